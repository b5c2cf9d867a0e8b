-- session setup (1)
SET ANSI_NULLS, ANSI_PADDING, ANSI_WARNINGS, ARITHABORT, CONCAT_NULL_YIELDS_NULL, QUOTED_IDENTIFIER ON

-- session setup (2)
SET NUMERIC_ROUNDABORT OFF

-- session setup (3)
SET XACT_ABORT OFF

-- session setup (4)
SET DATEFORMAT ymd

-- session setup (5)
SET LOCK_TIMEOUT 60000

-- begin
BEGIN TRANSACTION

-- commit
COMMIT TRANSACTION

-- rollback
IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION

-- ping
SELECT 1

-- a hook runs in the tenant database
USE [Mirror_Cust24709]

-- a hook's transaction (1)
SET XACT_ABORT ON

-- a hook's transaction (2)
BEGIN TRANSACTION

