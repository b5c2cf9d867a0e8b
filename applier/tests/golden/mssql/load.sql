-- attachment: stage
CREATE TABLE [#mirror_stage] ([id] int NOT NULL PRIMARY KEY, [content_type] nvarchar(255) NULL, [name] nvarchar(255) NULL, [att_size] int NULL, [auth_key] nvarchar(255) NULL, [charset] nvarchar(255) NULL, [dbi_agent_id] int NULL, [dbi_key] nvarchar(255) NULL, [dbi_last_syncronized] datetime NULL, [dbi_last_modified] datetime NULL, [attachment_location_id] int NULL)

-- attachment: update from stage
UPDATE m SET m.[content_type] = s.[content_type], m.[name] = s.[name], m.[att_size] = s.[att_size], m.[auth_key] = s.[auth_key], m.[charset] = s.[charset], m.[dbi_agent_id] = s.[dbi_agent_id], m.[dbi_key] = s.[dbi_key], m.[dbi_last_syncronized] = s.[dbi_last_syncronized], m.[dbi_last_modified] = s.[dbi_last_modified], m.[attachment_location_id] = s.[attachment_location_id] FROM [Mirror_Cust24709].[dbo].[attachment] AS m INNER JOIN [#mirror_stage] AS s ON m.[id] = s.[id]

-- attachment: insert from stage
INSERT INTO [Mirror_Cust24709].[dbo].[attachment] ([id], [content_type], [name], [att_size], [auth_key], [charset], [dbi_agent_id], [dbi_key], [dbi_last_syncronized], [dbi_last_modified], [attachment_location_id]) SELECT s.[id], s.[content_type], s.[name], s.[att_size], s.[auth_key], s.[charset], s.[dbi_agent_id], s.[dbi_key], s.[dbi_last_syncronized], s.[dbi_last_modified], s.[attachment_location_id] FROM [#mirror_stage] AS s WHERE NOT EXISTS (SELECT 1 FROM [Mirror_Cust24709].[dbo].[attachment] AS m WITH (UPDLOCK, HOLDLOCK) WHERE m.[id] = s.[id])

-- attachment: merge from stage
MERGE INTO [Mirror_Cust24709].[dbo].[attachment] WITH (HOLDLOCK) AS m USING [#mirror_stage] AS s ON m.[id] = s.[id] WHEN MATCHED THEN UPDATE SET m.[content_type] = s.[content_type], m.[name] = s.[name], m.[att_size] = s.[att_size], m.[auth_key] = s.[auth_key], m.[charset] = s.[charset], m.[dbi_agent_id] = s.[dbi_agent_id], m.[dbi_key] = s.[dbi_key], m.[dbi_last_syncronized] = s.[dbi_last_syncronized], m.[dbi_last_modified] = s.[dbi_last_modified], m.[attachment_location_id] = s.[attachment_location_id] WHEN NOT MATCHED BY TARGET THEN INSERT ([id], [content_type], [name], [att_size], [auth_key], [charset], [dbi_agent_id], [dbi_key], [dbi_last_syncronized], [dbi_last_modified], [attachment_location_id]) VALUES (s.[id], s.[content_type], s.[name], s.[att_size], s.[auth_key], s.[charset], s.[dbi_agent_id], s.[dbi_key], s.[dbi_last_syncronized], s.[dbi_last_modified], s.[attachment_location_id]);

-- attachment: drop stage
DROP TABLE [#mirror_stage]

-- attachment: delete keys
DELETE FROM [Mirror_Cust24709].[dbo].[attachment] WHERE [id] IN (SELECT CAST([value] AS bigint) FROM OPENJSON(@P1))

-- attachment: any key exists
SELECT TOP (1) 1 FROM [Mirror_Cust24709].[dbo].[attachment] WHERE [id] IN (SELECT CAST([value] AS bigint) FROM OPENJSON(@P1))

-- attachment: 3 rows into the stage
INSERT INTO [#mirror_stage] ([id], [content_type], [name], [att_size], [auth_key], [charset], [dbi_agent_id], [dbi_key], [dbi_last_syncronized], [dbi_last_modified], [attachment_location_id]) VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, @P9, @P10, @P11), (@P12, @P13, @P14, @P15, @P16, @P17, @P18, @P19, @P20, @P21, @P22), (@P23, @P24, @P25, @P26, @P27, @P28, @P29, @P30, @P31, @P32, @P33)

-- attachment: 2 rows straight into the table
INSERT INTO [Mirror_Cust24709].[dbo].[attachment] ([id], [content_type], [name], [att_size], [auth_key], [charset], [dbi_agent_id], [dbi_key], [dbi_last_syncronized], [dbi_last_modified], [attachment_location_id]) VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, @P9, @P10, @P11), (@P12, @P13, @P14, @P15, @P16, @P17, @P18, @P19, @P20, @P21, @P22)

-- keys: stage
CREATE TABLE [#mirror_stage] ([keys_id] int NOT NULL PRIMARY KEY)

-- keys: insert from stage
INSERT INTO [Mirror_Cust24709].[dbo].[keys] ([keys_id]) SELECT s.[keys_id] FROM [#mirror_stage] AS s WHERE NOT EXISTS (SELECT 1 FROM [Mirror_Cust24709].[dbo].[keys] AS m WITH (UPDLOCK, HOLDLOCK) WHERE m.[keys_id] = s.[keys_id])

-- keys: merge from stage
MERGE INTO [Mirror_Cust24709].[dbo].[keys] WITH (HOLDLOCK) AS m USING [#mirror_stage] AS s ON m.[keys_id] = s.[keys_id] WHEN NOT MATCHED BY TARGET THEN INSERT ([keys_id]) VALUES (s.[keys_id]);

-- keys: drop stage
DROP TABLE [#mirror_stage]

-- keys: delete keys
DELETE FROM [Mirror_Cust24709].[dbo].[keys] WHERE [keys_id] IN (SELECT CAST([value] AS bigint) FROM OPENJSON(@P1))

-- keys: any key exists
SELECT TOP (1) 1 FROM [Mirror_Cust24709].[dbo].[keys] WHERE [keys_id] IN (SELECT CAST([value] AS bigint) FROM OPENJSON(@P1))

-- keys: 3 rows into the stage
INSERT INTO [#mirror_stage] ([keys_id]) VALUES (@P1), (@P2), (@P3)

-- keys: 2 rows straight into the table
INSERT INTO [Mirror_Cust24709].[dbo].[keys] ([keys_id]) VALUES (@P1), (@P2)

