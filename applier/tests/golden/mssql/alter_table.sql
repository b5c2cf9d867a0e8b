-- widen content_type from nvarchar(255) to nvarchar(max) (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] DROP CONSTRAINT IF EXISTS [DF_attachment_content_type_a75e55d3]

-- widen content_type from nvarchar(255) to nvarchar(max) (2)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ALTER COLUMN [content_type] nvarchar(max) NULL

-- widen att_size from int to bigint (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] DROP CONSTRAINT IF EXISTS [DF_attachment_att_size_2032a47e]

-- widen att_size from int to bigint (2)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ALTER COLUMN [att_size] bigint NULL

-- widen body from ntext to nvarchar(max) (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] DROP CONSTRAINT IF EXISTS [DF_attachment_body_a6fb0df0]

-- widen body from ntext to nvarchar(max) (2)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ALTER COLUMN [body] nvarchar(max) NULL

-- set default of dbi_agent_id (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] DROP CONSTRAINT IF EXISTS [DF_attachment_dbi_agent_id_493f0106]

-- set default of dbi_agent_id (2)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ADD CONSTRAINT [DF_attachment_dbi_agent_id_493f0106] DEFAULT (0) FOR [dbi_agent_id]

-- widen dbi_key from nvarchar(255) to nvarchar(max) (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] DROP CONSTRAINT IF EXISTS [DF_attachment_dbi_key_6bc8effd]

-- widen dbi_key from nvarchar(255) to nvarchar(max) (2)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ALTER COLUMN [dbi_key] nvarchar(max) NULL

-- widen dbi_key from nvarchar(255) to nvarchar(max) (3)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ADD CONSTRAINT [DF_attachment_dbi_key_6bc8effd] DEFAULT (N'') FOR [dbi_key]

-- drop not null on dbi_key (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] DROP CONSTRAINT IF EXISTS [DF_attachment_dbi_key_6bc8effd]

-- drop not null on dbi_key (2)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ALTER COLUMN [dbi_key] nvarchar(max) NULL

-- drop not null on dbi_key (3)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ADD CONSTRAINT [DF_attachment_dbi_key_6bc8effd] DEFAULT (N'') FOR [dbi_key]

-- set default of dbi_last_modified (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] DROP CONSTRAINT IF EXISTS [DF_attachment_dbi_last_modified_9e164f3e]

-- set default of charset (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] DROP CONSTRAINT IF EXISTS [DF_attachment_charset_df696b45]

-- set default of charset (2)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ADD CONSTRAINT [DF_attachment_charset_df696b45] DEFAULT (N'utf-8') FOR [charset]

-- add column x_note (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ADD [x_note] nvarchar(100) NULL

-- add column x_flag (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ADD [x_flag] smallint NOT NULL CONSTRAINT [DF_attachment_x_flag_ae681fa0] DEFAULT (0)

-- add column x_when (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ADD [x_when] datetime NULL CONSTRAINT [DF_attachment_x_when_c75b6865] DEFAULT (N'1760-01-01 00:00:00') WITH VALUES

-- widen the key column (1)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] DROP CONSTRAINT IF EXISTS [DF_attachment_id_6ff5a58d]

-- widen the key column (2)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] DROP CONSTRAINT IF EXISTS [PK_attachment_602a5e69]

-- widen the key column (3)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ALTER COLUMN [id] bigint NOT NULL

-- widen the key column (4)
ALTER TABLE [Mirror_Cust24709].[dbo].[attachment] ADD CONSTRAINT [PK_attachment_602a5e69] PRIMARY KEY ([id])

