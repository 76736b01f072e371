import Foundation
import Store
import Testing

@Suite struct StoreLockTests {
    @Test("a second lock on a held store is refused with the holder's pid; it is free once released")
    func refusal() throws {
        let root = try scratchStore().root
        var first: StoreLock? = try StoreLock(storeRoot: root, wait: false)
        #expect { try StoreLock(storeRoot: root, wait: false) } throws: { error in
            let text = "\(error)"
            return text.contains("another storyloom run (pid \(getpid())) is using the store at \(root.path)")
                && text.contains("--wait")
        }
        #expect(first != nil)
        first = nil
        let second = try StoreLock(storeRoot: root, wait: false)
        #expect(try String(contentsOfFile: second.path, encoding: .utf8) == "pid \(getpid())")
    }

    @Test("a waiting lock is granted when the holder lets go")
    func waits() async throws {
        let root = try scratchStore().root
        var holder: StoreLock? = try StoreLock(storeRoot: root, wait: false)
        let waiter = Task.detached { try StoreLock(storeRoot: root, wait: true) }
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(holder != nil)
        holder = nil
        let granted = try await waiter.value
        #expect(FileManager.default.fileExists(atPath: granted.path))
    }
}
