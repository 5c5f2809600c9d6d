package postgres

// Migrations are the schema's migrations, for the migration tests.
var Migrations = migrations
