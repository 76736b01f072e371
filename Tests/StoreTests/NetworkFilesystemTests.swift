import Foundation
import Store
import StoreTestSupport
import Testing

/// A SQLite store is refused on a network filesystem (no NFS mount here: the filesystem type is injected).
@Suite struct NetworkFilesystemTests {
    let root = URL(fileURLWithPath: "/shared/project/store")

    @Test("NFS, SMB, 9P, FUSE, Lustre, GPFS and Ceph are refused, saying what to use instead",
          arguments: [(0x6969, "NFS"), (0xFF53_4D42, "CIFS"), (0xFE53_4D42, "SMB2"), (0x0102_1997, "9P"),
                      (0x6573_5546, "FUSE"), (0x0BD0_0BD0, "Lustre"), (0x4750_4653, "GPFS"), (0x00C3_6400, "Ceph")])
    func refused(type: UInt, name: String) throws {
        let error = #expect(throws: StoreError.self) {
            try NetworkFilesystem.refuseSQLite(in: root, type: type, environment: [:])
        }
        let message = error?.message ?? ""
        #expect(message.contains("the SQLite store at /shared/project/store is on a network filesystem (\(name))"))
        #expect(message.contains("store: postgresql://USER@HOST:PORT/DATABASE"))
        #expect(message.contains("media: DIR"))
        #expect(message.contains("STORYLOOM_ALLOW_NETWORK_SQLITE=1"))
    }

    @Test("local filesystems pass; the override lets a network one pass")
    func localAndOverride() throws {
        for local: UInt in [0xEF53, 0x0102_1994, 0x5846_5342, 0x9123_683E, 0x794C_7630] {   // ext4, tmpfs, xfs, btrfs, overlay
            try NetworkFilesystem.refuseSQLite(in: root, type: local, environment: [:])
        }
        try NetworkFilesystem.refuseSQLite(in: root, type: 0x6969, environment: ["STORYLOOM_ALLOW_NETWORK_SQLITE": "1"])
    }

    @Test("the filesystem of a real folder is read with statfs")
    func realFolder() throws {
        let type = try NetworkFilesystem.type(of: FileManager.default.temporaryDirectory.path)
        #expect(type != 0)
        #expect(throws: StoreError.self) { try NetworkFilesystem.type(of: "/no/such/folder") }
    }
}

@Suite struct PostgresAddressTests {
    @Test("a URL's parts, with libpq's defaults and PGPASSWORD")
    func parses() throws {
        let a = try PostgresAddress(url: "postgresql://ann:s%40cret@db.example:6543/stories?sslmode=require", environment: [:])
        #expect(a == PostgresAddress(host: "db.example", port: 6543, user: "ann", password: "s@cret", database: "stories", tls: .require))
        let b = try PostgresAddress(url: "postgres://bob@db", environment: ["PGPASSWORD": "pw"])
        #expect(b.port == 5432 && b.user == "bob" && b.password == "pw" && b.database == "bob" && b.tls == .prefer)
        let c = try PostgresAddress(url: "postgresql://db/x", environment: ["PGUSER": "carol"])
        #expect(c.user == "carol" && c.password == nil)
    }

    @Test("the password never shows: not in the description, not in errors about the URL")
    func hidesThePassword() throws {
        let a = try PostgresAddress(url: "postgresql://ann:topsecret@db:5432/stories", environment: [:])
        #expect("\(a)" == "postgresql://ann@db:5432/stories")
        #expect("\(StoreAddress.postgres(a, mediaFolder: URL(fileURLWithPath: "/m")))".contains("topsecret") == false)
        for bad in ["postgresql://ann:topsecret@db/x?sslmode=maybe", "postgresql://ann:topsecret@db/x?foo=1", "postgresql://ann:topsecret@/x"] {
            let error = #expect(throws: StoreError.self) { try PostgresAddress(url: bad, environment: [:]) }
            #expect(error?.message.contains("topsecret") == false)
            #expect(error?.message.contains("ann:***@") == true)
        }
    }

    @Test("a wrong password or a missing server is an error naming the store, without the password",
          .enabled(if: TestPostgres.enabled, Comment(rawValue: TestPostgres.skipReason)))
    func connectionErrors() throws {
        let server = try PostgresAddress(url: try #require(TestPostgres.url))
        var nowhere = server
        nowhere.port = 1
        nowhere.password = "topsecret"
        let error = #expect(throws: StoreError.self) {
            try PostgresStore(address: nowhere, mediaFolder: FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-pg-\(UUID().uuidString)"))
        }
        #expect(error?.message.contains("cannot connect to the PostgreSQL store \(nowhere)") == true)
        #expect(error?.message.contains("topsecret") == false)
    }
}
