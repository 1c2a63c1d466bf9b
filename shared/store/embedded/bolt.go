package embedded

import bolt "go.etcd.io/bbolt"

// Bolt is the underlying bbolt database, for the queues and feeds that share the file.
func (db *DB) Bolt() *bolt.DB { return db.bolt }
