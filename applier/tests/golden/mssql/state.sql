-- create Cust24709_mirroring
CREATE TABLE [Mirror_Cust24709].[dbo].[Cust24709_mirroring] ([tablename] nvarchar(128) NOT NULL PRIMARY KEY, [lsn] bigint NOT NULL DEFAULT (-1), [schemahash] nvarchar(128) NULL, [epoch] bigint NOT NULL DEFAULT (0), [schemajson] nvarchar(max) NULL, [quarantine] nvarchar(max) NULL, [quarantined_at] datetime2 NULL, [loading] bit NOT NULL DEFAULT (0), [updated_at] datetime2 NOT NULL DEFAULT (SYSUTCDATETIME()), [last_cycle_at] datetime2 NULL)

-- create Cust24709_mirroring_applied
CREATE TABLE [Mirror_Cust24709].[dbo].[Cust24709_mirroring_applied] ([message_id] uniqueidentifier NOT NULL PRIMARY KEY, [kind] nvarchar(32) NOT NULL, [applied_at] datetime2 NOT NULL DEFAULT (SYSUTCDATETIME()))

-- create Cust24709_mirroring_parked
CREATE TABLE [Mirror_Cust24709].[dbo].[Cust24709_mirroring_parked] ([seq] bigint IDENTITY(1,1) NOT NULL PRIMARY KEY, [tablename] nvarchar(128) NOT NULL, [epoch] bigint NOT NULL, [message_id] uniqueidentifier NOT NULL, [batch] varbinary(max) NOT NULL, [parked_at] datetime2 NOT NULL DEFAULT (SYSUTCDATETIME()))

-- create Cust24709_mirroring_failed
CREATE TABLE [Mirror_Cust24709].[dbo].[Cust24709_mirroring_failed] ([message_id] uniqueidentifier NOT NULL PRIMARY KEY, [tablename] nvarchar(128) NOT NULL, [epoch] bigint NOT NULL, [reason] nvarchar(max) NOT NULL, [failed_at] datetime2 NOT NULL DEFAULT (SYSUTCDATETIME()))

-- create Cust24709_mirroring_cycles
CREATE TABLE [Mirror_Cust24709].[dbo].[Cust24709_mirroring_cycles] ([cycle] bigint IDENTITY(1,1) NOT NULL PRIMARY KEY, [message_id] uniqueidentifier NOT NULL, [completed_at] datetime2 NOT NULL DEFAULT (SYSUTCDATETIME()), [summary] nvarchar(max) NOT NULL)

-- which state tables exist
SELECT t.[name] FROM [Mirror_Cust24709].[sys].[tables] AS t INNER JOIN [Mirror_Cust24709].[sys].[schemas] AS s ON s.[schema_id] = t.[schema_id] WHERE s.[name] = N'dbo' AND t.[name] IN (@P1, @P2, @P3, @P4, @P5)

-- mirror tables
SELECT t.[name] FROM [Mirror_Cust24709].[sys].[tables] AS t INNER JOIN [Mirror_Cust24709].[sys].[schemas] AS s ON s.[schema_id] = t.[schema_id] WHERE s.[name] = N'dbo'

-- every state row
SELECT [tablename], [lsn], [schemahash], [epoch], [schemajson], [quarantine], [loading] FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring]

-- one state row, locked
SELECT [tablename], [lsn], [schemahash], [epoch], [schemajson], [quarantine], [loading] FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring] WITH (UPDLOCK, HOLDLOCK) WHERE [tablename] = @P1

-- save state (1: update)
UPDATE [Mirror_Cust24709].[dbo].[Cust24709_mirroring] SET [lsn] = @P2, [schemahash] = @P3, [epoch] = @P4, [schemajson] = @P5, [quarantine] = @P6, [quarantined_at] = CASE WHEN @P6 IS NULL THEN NULL ELSE COALESCE([quarantined_at], SYSUTCDATETIME()) END, [loading] = @P7, [updated_at] = SYSUTCDATETIME() WHERE [tablename] = @P1

-- save state (2: insert when missing)
INSERT INTO [Mirror_Cust24709].[dbo].[Cust24709_mirroring] ([tablename], [lsn], [schemahash], [epoch], [schemajson], [quarantine], [quarantined_at], [loading], [updated_at]) SELECT @P1, @P2, @P3, @P4, @P5, @P6, CASE WHEN @P6 IS NULL THEN NULL ELSE SYSUTCDATETIME() END, @P7, SYSUTCDATETIME() WHERE NOT EXISTS (SELECT 1 FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring] WITH (UPDLOCK, HOLDLOCK) WHERE [tablename] = @P1)

-- save progress
UPDATE [Mirror_Cust24709].[dbo].[Cust24709_mirroring] SET [lsn] = @P2, [loading] = @P3, [updated_at] = SYSUTCDATETIME() WHERE [tablename] = @P1

-- delete state
DELETE FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring] WHERE [tablename] = @P1

-- message history
SELECT f.[tablename], f.[epoch], f.[reason], CAST(CASE WHEN EXISTS (SELECT 1 FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring_applied] WHERE [message_id] = @P1) THEN 1 ELSE 0 END AS bit) FROM (SELECT 1 AS [one]) AS o LEFT JOIN [Mirror_Cust24709].[dbo].[Cust24709_mirroring_failed] AS f ON f.[message_id] = @P1

-- record applied
INSERT INTO [Mirror_Cust24709].[dbo].[Cust24709_mirroring_applied] ([message_id], [kind]) SELECT @P1, @P2 WHERE NOT EXISTS (SELECT 1 FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring_applied] WITH (UPDLOCK, HOLDLOCK) WHERE [message_id] = @P1)

-- prune (1)
DELETE FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring_applied] WHERE [applied_at] < DATEADD(second, -@P1, SYSUTCDATETIME())

-- prune (2)
DELETE FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring_failed] WHERE [failed_at] < DATEADD(second, -@P1, SYSUTCDATETIME())

-- park
INSERT INTO [Mirror_Cust24709].[dbo].[Cust24709_mirroring_parked] ([tablename], [epoch], [message_id], [batch]) VALUES (@P1, @P2, @P3, @P4)

-- parked
SELECT [batch] FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring_parked] WHERE [tablename] = @P1 ORDER BY [seq]

-- discard parked
DELETE FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring_parked] WHERE [tablename] = @P1

-- record failure (1: update)
UPDATE [Mirror_Cust24709].[dbo].[Cust24709_mirroring_failed] SET [tablename] = @P2, [epoch] = @P3, [reason] = @P4, [failed_at] = SYSUTCDATETIME() WHERE [message_id] = @P1

-- record failure (2: insert when missing)
INSERT INTO [Mirror_Cust24709].[dbo].[Cust24709_mirroring_failed] ([message_id], [tablename], [epoch], [reason]) SELECT @P1, @P2, @P3, @P4 WHERE NOT EXISTS (SELECT 1 FROM [Mirror_Cust24709].[dbo].[Cust24709_mirroring_failed] WITH (UPDLOCK, HOLDLOCK) WHERE [message_id] = @P1)

-- record cycle
INSERT INTO [Mirror_Cust24709].[dbo].[Cust24709_mirroring_cycles] ([message_id], [summary]) VALUES (@P1, @P2)

-- end loading
UPDATE [Mirror_Cust24709].[dbo].[Cust24709_mirroring] SET [loading] = 0 WHERE [loading] = 1

-- touch tables
UPDATE [Mirror_Cust24709].[dbo].[Cust24709_mirroring] SET [last_cycle_at] = SYSUTCDATETIME() WHERE [tablename] IN (SELECT [value] FROM OPENJSON(@P1))

