-- The base every other migration builds on: pgvector.
-- Creating an extension needs the CREATE privilege on the database (pgvector >= 0.5
-- is a trusted extension); on a managed database, have the owner run this once.
CREATE EXTENSION IF NOT EXISTS vector;
