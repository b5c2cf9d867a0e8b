-- create a table with hostile names
CREATE TABLE [Mirror_a]]b].[dbo].[a]]b] ([id]]]]] int NOT NULL CONSTRAINT [PK_a]]b_21be9d41] PRIMARY KEY, [x'y] nvarchar(10) NULL, [q"] nvarchar(max) NOT NULL CONSTRAINT [DF_a]]b_q"_a5c791ef] DEFAULT (N'it''s ]; DROP TABLE x; --'), [x]]; DROP TABLE [y]]; --] int NULL CONSTRAINT [DF_a]]b_x]]; DROP TABLE [y]]; --_20beeb73] DEFAULT (-1))

-- update from stage
UPDATE m SET m.[x'y] = s.[x'y], m.[q"] = s.[q"], m.[x]]; DROP TABLE [y]]; --] = s.[x]]; DROP TABLE [y]]; --] FROM [Mirror_a]]b].[dbo].[a]]b] AS m INNER JOIN [#mirror_stage] AS s ON m.[id]]]]] = s.[id]]]]]

-- insert from stage
INSERT INTO [Mirror_a]]b].[dbo].[a]]b] ([id]]]]], [x'y], [q"], [x]]; DROP TABLE [y]]; --]) SELECT s.[id]]]]], s.[x'y], s.[q"], s.[x]]; DROP TABLE [y]]; --] FROM [#mirror_stage] AS s WHERE NOT EXISTS (SELECT 1 FROM [Mirror_a]]b].[dbo].[a]]b] AS m WITH (UPDLOCK, HOLDLOCK) WHERE m.[id]]]]] = s.[id]]]]])

-- drop
DROP TABLE IF EXISTS [Mirror_a]]b].[dbo].[a]]b]

-- set a hostile default (1)
ALTER TABLE [Mirror_a]]b].[dbo].[a]]b] DROP CONSTRAINT IF EXISTS [DF_a]]b_q"_a5c791ef]

-- set a hostile default (2)
ALTER TABLE [Mirror_a]]b].[dbo].[a]]b] ADD CONSTRAINT [DF_a]]b_q"_a5c791ef] DEFAULT (N'it''s ]; DROP TABLE x; --') FOR [q"]

