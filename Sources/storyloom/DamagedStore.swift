import Store

extension Session {
    /// Runs `body` on this session's store; when SQLite finds the database damaged, the error says which
    /// file, how to see what is damaged and how to recover.
    func recoveringDamage<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch { throw StoreDamage.explained(error, storeRoot: store.root) }
    }
}
