package main

import (
	"database/sql"
	"fmt"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

// testBed is the source and target MariaDB servers of scripts/testbed.sh.
type testBed struct {
	src, dst *sql.DB
}

func openServer(addr, user, password string) (*sql.DB, error) {
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/?multiStatements=true&timeout=10s", user, password, addr)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s does not answer (scripts/testbed.sh up): %w", addr, err)
	}
	return db, nil
}

func openTestBed(opts *options) (*testBed, error) {
	src, err := openServer(opts.srcAddr, opts.user, opts.password)
	if err != nil {
		return nil, err
	}
	dst, err := openServer(opts.dstAddr, opts.user, opts.password)
	if err != nil {
		src.Close()
		return nil, err
	}
	return &testBed{src: src, dst: dst}, nil
}

// reset drops the schema on both sides and the job's position rows on the target.
func (tb *testBed) reset(schema, job string) error {
	drop := fmt.Sprintf("DROP DATABASE IF EXISTS `%s`", schema)
	if _, err := tb.src.Exec(drop); err != nil {
		return err
	}
	if _, err := tb.dst.Exec(drop); err != nil {
		return err
	}
	for _, table := range []string{"gtid_executed", "job_position", "snapshot_progress"} {
		// The position tables exist once any job has run; a missing one is fine.
		_, err := tb.dst.Exec(fmt.Sprintf("DELETE FROM dtle.%s WHERE job_name = ?", table), job)
		if err != nil && !strings.Contains(err.Error(), "doesn't exist") {
			return err
		}
	}
	return nil
}

// tableState is a table's row count and CHECKSUM TABLE on one server.
type tableState struct {
	rows     int64
	checksum int64
}

func stateOf(db *sql.DB, schema, table string) (tableState, error) {
	var st tableState
	if err := db.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM `%s`.`%s`", schema, table)).Scan(&st.rows); err != nil {
		return st, err
	}
	var name string
	var sum sql.NullInt64
	if err := db.QueryRow(fmt.Sprintf("CHECKSUM TABLE `%s`.`%s`", schema, table)).Scan(&name, &sum); err != nil {
		return st, err
	}
	if !sum.Valid {
		return st, fmt.Errorf("no checksum for %s.%s", schema, table)
	}
	st.checksum = sum.Int64
	return st, nil
}

// same compares source and target for each table: counts and checksums.
func (tb *testBed) same(schema string, tables ...string) error {
	for _, table := range tables {
		a, err := stateOf(tb.src, schema, table)
		if err != nil {
			return fmt.Errorf("source %s: %w", table, err)
		}
		b, err := stateOf(tb.dst, schema, table)
		if err != nil {
			return fmt.Errorf("target %s: %w", table, err)
		}
		if a != b {
			return fmt.Errorf("%s: source %d rows (checksum %d), target %d rows (checksum %d)",
				table, a.rows, a.checksum, b.rows, b.checksum)
		}
	}
	return nil
}

// converge waits until the target holds what the source holds, or returns the last difference.
func (tb *testBed) converge(schema string, timeout time.Duration, tables ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		err := tb.same(schema, tables...)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// count is SELECT COUNT(*) on one server.
func count(db *sql.DB, schema, table string) (int64, error) {
	var n int64
	err := db.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM `%s`.`%s`", schema, table)).Scan(&n)
	return n, err
}
