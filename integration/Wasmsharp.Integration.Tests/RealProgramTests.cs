using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// A real third-party program: the SQLite shell (Debian 12's source, built for wasm32-wasi at test time)
// run as a container that reads an SQL script from a bind mount and leaves a database and a CSV there.
// Where the host has sqlite3, its results are the reference; the container's database must open there too.
[Collection(ContainerdCollection.Name)]
public sealed class RealProgramTests(ContainerdFixture f)
{
    private const string HostSqlite = "/usr/bin/sqlite3";

    // A small inventory: a table, rows, a join and a grouped report written as CSV.
    private const string Script = """
        CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL);
        CREATE TABLE stock(item INTEGER REFERENCES item(id), shelf TEXT, count INTEGER);
        INSERT INTO item(name, kind) VALUES ('bolt', 'hardware'), ('nut', 'hardware'), ('glue', 'supplies'), ('tape', 'supplies'), ('saw', 'tools');
        INSERT INTO stock VALUES (1, 'A1', 120), (1, 'B2', 30), (2, 'A1', 200), (3, 'C3', 7), (4, 'C3', 12), (4, 'C4', 3), (5, 'D1', 2);
        CREATE INDEX stock_item ON stock(item);
        .headers on
        .mode csv
        .output /data/report.csv
        SELECT kind, count(DISTINCT item.id) AS items, sum(count) AS total, group_concat(DISTINCT shelf) AS shelves
          FROM item JOIN stock ON stock.item = item.id GROUP BY kind ORDER BY total DESC;
        .output stdout
        .headers off
        SELECT 'rows', count(*) FROM stock;
        """;

    private static readonly string ExpectedReport =
        "kind,items,total,shelves\r\nhardware,2,350,\"A1,B2\"\r\nsupplies,2,22,\"C3,C4\"\r\ntools,1,2,D1\r\n";

    private static string[] Bind(string host, string mode = "rw") =>
        ["--mount", $"type=bind,src={host},dst=/data,options=rbind:{mode}"];

    private ProcessResult RunSqlite(string id, string host, params string[] args)
    {
        EnsureImage();
        return f.Ctr(["run", "--rm", "--runtime", RepoLayout.Runtime, .. Bind(host), RealPrograms.SqliteImage, id, "/sqlite3.wasm", .. args]);
    }

    private void EnsureImage()
    {
        if (f.Ctr("images", "ls", "-q").Stdout.Contains(RealPrograms.SqliteImage, StringComparison.Ordinal)) return;
        Images.Import(f.Containerd, RealPrograms.BuildSqliteImage(f.Containerd.BaseDir));
    }

    [Fact]
    public void Sqlite_runs_a_script_from_a_bind_mount_and_leaves_the_database_and_a_csv_report()
    {
        var id = f.NewId("sqlite-script");
        var host = f.HostDir(id);
        File.WriteAllText(Path.Combine(host, "in.sql"), Script);

        var run = RunSqlite(id, host, "/data/inventory.db", ".read /data/in.sql");
        f.Check(run.ExitCode == 0, "the SQLite shell should run the script and exit 0", id, run);
        f.Check(run.Stdout == "rows,7\r\n", $"the script's last query prints to the container's stdout (got '{run.Stdout}')", id, run);
        var report = Path.Combine(host, "report.csv");
        f.Check(File.Exists(report), "the report lands in the bind-mounted directory", id, run);
        f.Check(File.ReadAllText(report) == ExpectedReport, $"report.csv content:\n{File.ReadAllText(report)}", id, run);

        var db = Path.Combine(host, "inventory.db");
        f.Check(File.ReadAllBytes(db).AsSpan(0, 16).SequenceEqual("SQLite format 3\0"u8), "the database file is an SQLite 3 database", id, run);
        f.Check(!File.Exists(db + ".lock"), "the dot-file lock is released when the shell exits", id, run);

        if (File.Exists(HostSqlite))
        {
            // The host's native sqlite3 (same release) agrees on the report and opens the container's database.
            var nativeDir = f.HostDir(id + "-native");
            File.WriteAllText(Path.Combine(nativeDir, "in.sql"), Script.Replace("/data/", nativeDir + "/", StringComparison.Ordinal));
            var native = ProcessRunner.Run(HostSqlite, [Path.Combine(nativeDir, "inventory.db"), $".read {nativeDir}/in.sql"]);
            f.Check(native.ExitCode == 0 && native.Stdout == run.Stdout, "native sqlite3 prints the same", id, native, run);
            f.Check(File.ReadAllText(Path.Combine(nativeDir, "report.csv")) == File.ReadAllText(report), "native sqlite3 writes the same report", id, native);

            var check = ProcessRunner.Run(HostSqlite, [db, "PRAGMA integrity_check; SELECT name FROM item ORDER BY id;"]);
            f.Check(check.ExitCode == 0 && check.Stdout == "ok\nbolt\nnut\nglue\ntape\nsaw\n", "the host's sqlite3 reads the container's database", id, check);
        }
    }

    [Fact]
    public void Sqlite_container_updates_an_existing_database_on_the_mount()
    {
        var id = f.NewId("sqlite-update");
        var host = f.HostDir(id);
        File.WriteAllText(Path.Combine(host, "in.sql"), Script);
        var create = RunSqlite(id, host, "/data/inventory.db", ".read /data/in.sql");
        f.Check(create.ExitCode == 0, "creating the database should succeed", id, create);

        // A second container changes the file the first left; a third reads the change back.
        var updateId = f.NewId("sqlite-update-2");
        var update = RunSqlite(updateId, host, "/data/inventory.db", "UPDATE stock SET count = count - 20 WHERE shelf = 'A1'; DELETE FROM stock WHERE count < 5;");
        f.Check(update.ExitCode == 0 && update.Stdout.Length == 0, "the update runs silently", updateId, update);
        var readId = f.NewId("sqlite-update-3");
        var read = RunSqlite(readId, host, "-separator", " ", "/data/inventory.db", "SELECT shelf, sum(count) FROM stock GROUP BY shelf ORDER BY shelf;");
        f.Check(read.ExitCode == 0 && read.Stdout == "A1 280\nB2 30\nC3 19\n", $"the third container sees the second's changes (got '{read.Stdout}')", readId, read);
        f.AssertNothingLeft(readId, read);
    }

    [Fact]
    public void Sqlite_error_in_the_script_is_reported_like_the_native_shell()
    {
        var id = f.NewId("sqlite-error");
        var host = f.HostDir(id);
        File.WriteAllText(Path.Combine(host, "bad.sql"), "CREATE TABLE t(x);\nINSERT INTO missing VALUES (1);\nSELECT 'not reached';\n");
        var run = RunSqlite(id, host, "-bail", "/data/bad.db", ".read /data/bad.sql");
        f.Check(run.ExitCode == 1, "a failing statement with -bail ends the shell with exit 1", id, run);
        f.Check(run.Stderr.Contains("no such table: missing", StringComparison.Ordinal), "SQLite's message reaches the container's stderr", id, run);
        f.Check(!run.Stdout.Contains("not reached", StringComparison.Ordinal), "nothing after the error runs", id, run);
        if (File.Exists(HostSqlite))
        {
            var native = ProcessRunner.Run(HostSqlite, ["-bail", Path.Combine(host, "native.db"), $".read {host}/bad.sql"]);
            f.Check(native.ExitCode == run.ExitCode, $"native sqlite3 exits {native.ExitCode} as well", id, native, run);
        }
    }
}
