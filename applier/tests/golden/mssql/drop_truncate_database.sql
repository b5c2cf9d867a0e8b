-- drop table
DROP TABLE IF EXISTS [Mirror_Cust24709].[dbo].[ticket]

-- truncate table
TRUNCATE TABLE [Mirror_Cust24709].[dbo].[ticket]

-- create the tenant database
CREATE DATABASE [Mirror_Cust24709]

-- does the tenant database exist (@P1 = name)
SELECT DB_ID(@P1)

