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
