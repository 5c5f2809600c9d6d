package postgres

import "strings"

// MigrationsBefore returns the migrations before the first that contains
// marker, for tests that build a schema of an older version.
func MigrationsBefore(marker string) []string {
	for i, m := range migrations {
		if strings.Contains(m, marker) {
			return migrations[:i]
		}
	}
	return nil
}

// PartitionName is partitionName, for tests.
func PartitionName(day int64) string { return partitionName(day) }

// InsertOnly makes PutEvents use INSERT rather than COPY.
func InsertOnly(s *Store) { s.insertOnly = true }

// BinaryCopy makes PutEvents copy in the binary format.
func BinaryCopy(s *Store) { s.binaryCopy = true }

// Migrations are the schema's migrations, for the migration tests.
var Migrations = migrations
