import CFilesystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Network filesystems, on which a SQLite store is refused: their locking and write ordering are not what
/// SQLite relies on, so concurrent runs from several nodes could corrupt the database silently.
public enum NetworkFilesystem {
    /// Set to 1 to open a SQLite store on a network filesystem anyway (one node at a time, at your risk).
    public static let overrideVariable = "STORYLOOM_ALLOW_NETWORK_SQLITE"

    /// `statfs`'s `f_type` magic numbers (linux/magic.h and the filesystems' sources) and their names.
    static let types: [UInt: String] = [
        0x6969: "NFS",
        0xFF53_4D42: "CIFS",
        0xFE53_4D42: "SMB2",
        0x517B: "SMB",
        0x0102_1997: "9P",
        0x6573_5546: "FUSE",
        0x0BD0_0BD0: "Lustre",
        0x4750_4653: "GPFS",
        0x00C3_6400: "Ceph",
        0x5346_414F: "AFS",
        0x6B41_4653: "AFS",
        0x0116_1970: "GFS2",
        0x7461_636F: "OCFS2",
        0x1356_1890: "BeeGFS",
        0x1956_1130: "BeeGFS",
    ]

    /// The network filesystem `type` (an `f_type`) is, or nil for a local one.
    public static func name(ofType type: UInt) -> String? { types[type] }

    /// The `f_type` of the filesystem holding `path`.
    public static func type(of path: String) throws -> UInt {
        let type = storyloom_filesystem_type(path)
        guard type >= 0 else {
            throw StoreError("cannot tell which filesystem holds \(path): \(String(cString: strerror(errno)))")
        }
        return UInt(type)
    }

    /// Throws when the store folder `root` is on a network filesystem, unless overridden.
    public static func refuseSQLite(in root: URL, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        try refuseSQLite(in: root, type: type(of: root.path), environment: environment)
    }

    /// The check with a given `f_type` (tests inject one: no NFS mount here).
    public static func refuseSQLite(in root: URL, type: UInt, environment: [String: String]) throws {
        guard let name = name(ofType: type), environment[overrideVariable] != "1" else { return }
        throw StoreError("""
            the SQLite store at \(root.path) is on a network filesystem (\(name)), where SQLite's locking cannot be \
            trusted and the database can be corrupted. For a store that several nodes share use PostgreSQL: \
            `store: postgresql://USER@HOST:PORT/DATABASE` with `media: DIR` naming a folder every node sees (or \
            --store and --media); for one node, put the SQLite store on a local disk (--store DIR). \
            To open it anyway, set \(overrideVariable)=1.
            """)
    }
}
