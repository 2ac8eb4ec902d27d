# shellcheck shell=bash
# sqlite3 workload (plain_vs_preload.sh sqlite3): builds a 10,000-row database in the current directory
# and prints aggregates. Deterministic: no random(), no dates. Runs under the preload as a whole (bash,
# awk, sqlite3).
set -euo pipefail

# 10,000 single-row INSERTs in one transaction: many small statements parsed and freed one by one.
awk 'BEGIN {
  print "BEGIN;"
  print "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT NOT NULL, grp INTEGER, price REAL, note TEXT);"
  for (i = 1; i <= 10000; i++)
    printf "INSERT INTO item VALUES(%d, %cname-%05d%c, %d, %.2f, %c%s%c);\n", i, 39, i, 39, i % 37,
      (i * 7919 % 10007) / 100.0, 39, substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26, 1 + i % 20), 39
  print "COMMIT;"
}' > load.sql
sqlite3 -batch -bail items.db < load.sql

sqlite3 -batch -bail items.db <<'SQL'
.headers on
.mode list
CREATE INDEX item_grp ON item(grp);
CREATE TABLE grp_name AS SELECT DISTINCT grp, 'group ' || grp AS label FROM item;
SELECT count(*), sum(id), min(price), max(price), printf('%.4f', avg(price)), total(length(note)) FROM item;
SELECT g.label, count(*) AS n, printf('%.2f', sum(i.price)) AS total
  FROM item i JOIN grp_name g USING (grp) GROUP BY grp ORDER BY total DESC, grp LIMIT 5;
SELECT grp, name, price, rank() OVER (PARTITION BY grp ORDER BY price DESC, id) AS r
  FROM item WHERE grp IN (3, 5) ORDER BY grp, r LIMIT 6;
SELECT count(*) FROM item WHERE note LIKE '%mno%';
SELECT json_group_array(id) FROM (SELECT id FROM item WHERE price > 99.9 ORDER BY id);
SELECT group_concat(substr(name, 6), ',') FROM (SELECT name FROM item ORDER BY note DESC, id LIMIT 8);
UPDATE item SET price = price * 2 WHERE grp = 0;
DELETE FROM item WHERE id % 3 = 0;
VACUUM;
PRAGMA integrity_check;
SQL

# A fresh process reads what the previous one wrote.
sqlite3 -batch -bail items.db 'SELECT count(*), printf("%.2f", sum(price)) FROM item;'
