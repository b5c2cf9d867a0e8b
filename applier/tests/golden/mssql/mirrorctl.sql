-- every database
SELECT [name] FROM [sys].[databases]

-- which state tables exist (@P1 = JSON array of names)
SELECT [value] FROM OPENJSON(@P1) WHERE OBJECT_ID([value], N'U') IS NOT NULL

-- status of every table
SELECT s.[tablename], s.[lsn], s.[epoch], s.[quarantine], s.[quarantined_at], (SELECT COUNT_BIG(*) FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring_parked] AS p WHERE p.[tablename] = s.[tablename]), s.[loading], s.[updated_at], s.[last_cycle_at] FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring] AS s ORDER BY s.[tablename]

-- last cycle
SELECT MAX([completed_at]) FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring_cycles]

-- resync: lock the rows (@P1 = table or NULL)
SELECT [tablename], [lsn], CAST(CASE WHEN [quarantine] IS NULL THEN 0 ELSE 1 END AS bit) FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring] WITH (UPDLOCK, HOLDLOCK) WHERE @P1 IS NULL OR [tablename] = LOWER(@P1) ORDER BY [tablename]

-- resync: every table, for an error
SELECT [tablename] FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring] ORDER BY [tablename]

-- resync: set the LSN (@P1 = -1, @P2 = table or NULL)
UPDATE [Mirror_Cust24709].[dbo].[Cust24709_mirroring] SET [lsn] = @P1, [updated_at] = SYSUTCDATETIME() WHERE @P2 IS NULL OR [tablename] = LOWER(@P2)

