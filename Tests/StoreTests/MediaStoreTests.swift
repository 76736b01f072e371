import Foundation
import Store
import Testing

@Suite struct MediaStoreTests {
    @Test("put stores bytes under their SHA-256 and reads back from the hash alone")
    func putAndGet() throws {
        let media = try scratchStore().media
        let bytes = Data((0..<1000).map { UInt8($0 % 251) })
        let hash = try media.put(bytes, ext: "png")
        #expect(hash == Hashing.sha256Hex(bytes))
        let url = media.url(hash: hash, ext: "png")
        #expect(url.lastPathComponent == "\(hash).png")
        #expect(url.deletingLastPathComponent().lastPathComponent == String(hash.prefix(2)))
        #expect(try Data(contentsOf: url) == bytes)
        #expect(media.contains(hash: hash, ext: "png"))
        #expect(!media.contains(hash: hash, ext: "jpg"))
    }

    @Test("the same bytes twice are one object; different bytes are two")
    func deduplicates() throws {
        let media = try scratchStore().media
        let a = try media.put(Data("one".utf8), ext: "txt")
        #expect(try media.put(Data("one".utf8), ext: "txt") == a)
        let b = try media.put(Data("two".utf8), ext: "txt")
        #expect(a != b)
        #expect(Set(media.allObjects().map(\.hash)) == [a, b])
    }

    @Test("temporary files of interrupted writes are listed apart and removed")
    func temporaries() throws {
        let media = try scratchStore().media
        try media.put(Data("kept".utf8), ext: "txt")
        try Data("half".utf8).write(to: media.root.appendingPathComponent("tmp/abc.part"))
        #expect(media.allObjects().count == 1)
        #expect(media.removeTemporaries() == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: media.root.appendingPathComponent("tmp").path).isEmpty)
        #expect(media.allObjects().count == 1)
    }

    @Test("a read checks the bytes against the hash and names the file and both hashes when they differ")
    func readChecksTheHash() throws {
        let media = try scratchStore().media
        let bytes = Data("picture".utf8)
        let hash = try media.put(bytes, ext: "png")
        #expect(try media.read(hash: hash, ext: "png") == bytes)
        let url = media.url(hash: hash, ext: "png")
        try Data("pictura".utf8).write(to: url)
        let damaged = #expect(throws: StoreError.self) { try media.read(hash: hash, ext: "png") }
        #expect(damaged?.message.contains("\(url.path) is damaged: its bytes hash to \(Hashing.sha256Hex(Data("pictura".utf8))), not \(hash)") == true)
        try FileManager.default.removeItem(at: url)
        let missing = #expect(throws: StoreError.self) { try media.read(hash: hash, ext: "png") }
        #expect(missing?.message == "media object \(url.path) is missing")
    }

    @Test("a write leaves no temporary file behind and never replaces an object with other bytes")
    func writesAreAtomic() throws {
        let media = try scratchStore().media
        let hashes = try (0..<20).map { try media.put(Data("object \($0)".utf8), ext: "txt") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: media.root.appendingPathComponent("tmp").path).isEmpty)
        for (i, hash) in hashes.enumerated() { #expect(try media.read(hash: hash, ext: "txt") == Data("object \(i)".utf8)) }
    }
}
