import Foundation
import Steps
import Stories
import Store
import StoreTestSupport
import Testing
import Workflow

/// The store implementations the caching tests run against: SQLite always, PostgreSQL where a test server
/// is named (see ``TestPostgres``; the PostgreSQL-only tests say when it is not).
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres
    static var testable: [StoreKind] { TestPostgres.enabled ? [.sqlite, .postgres] : [.sqlite] }
    var testDescription: String { rawValue }
}

/// A scratch project: a text-only native collection, a workflow file, and a store, in a temp folder.
struct Scratch {
    let root: URL
    var workflowFile: URL { root.appendingPathComponent("wf.yaml") }
    var storeRoot: URL { root.appendingPathComponent("store") }
    let registry = StandardSteps.registry

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-wf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    /// Writes `n` stories of 3 text panels each (ids s1…sN).
    func writeStories(_ n: Int, edit: (inout [Entry]) -> Void = { _ in }) throws {
        var entries = (1...n).map { i in
            Entry(id: "s\(i)", kind: .story, panels: (1...3).map { p in Panel(image: nil, text: "Story \(i) panel \(p).") })
        }
        edit(&entries)
        try NativeCollection.write(entries, to: root.appendingPathComponent("collection"))
    }

    func writeWorkflow(_ yaml: String) throws {
        try yaml.write(to: workflowFile, atomically: true, encoding: .utf8)
    }

    func session(overrides: [String] = [], store: any ResultStore) throws -> WorkflowSession {
        try WorkflowSession(file: workflowFile, overrides: overrides, store: store, registry: registry)
    }

    func plan(overrides: [String] = [], store: any ResultStore) throws -> Plan {
        try session(overrides: overrides, store: store).makePlan()
    }

    @discardableResult
    func run(overrides: [String] = [], store: any ResultStore, batchSize: Int? = nil, jobs: Int = 1) async throws -> RunSummary {
        try await session(overrides: overrides, store: store).run(.init(jobs: jobs, batchSize: batchSize, gallery: false))
    }

    /// A model folder the planner can digest (a config and a weights file; nothing loads it).
    func writeModelFolder(_ path: String) throws -> URL {
        let model = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        try "{}".write(to: model.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try Data([1, 2, 3]).write(to: model.appendingPathComponent("model.safetensors"))
        return model
    }

    func openStore() throws -> ProjectStore { try ProjectStore(root: storeRoot) }

    /// A new store of `kind`: SQLite in `store/`, or a fresh PostgreSQL database with media in `media/`.
    func openStore(_ kind: StoreKind) throws -> any ResultStore {
        switch kind {
        case .sqlite: return try openStore()
        case .postgres: return try PostgresStore(address: TestPostgres.freshDatabase(), mediaFolder: root.appendingPathComponent("media"))
        }
    }
}

extension RunSummary {
    func ran(_ step: String) -> Int { steps.first { $0.id == step }?.ran ?? -1 }
    func cached(_ step: String) -> Int { steps.first { $0.id == step }?.cached ?? -1 }
    func failed(_ step: String) -> Int { steps.first { $0.id == step }?.failed ?? -1 }
}

extension Plan {
    func counts(_ step: String) -> (new: Int, stale: Int, cached: Int) { self.step(step)!.counts }
    func reasons(_ step: String) -> [String] {
        self.step(step)!.items.flatMap { if case .stale(let r) = $0.status { return r }; return [] }
    }
}

let chainWorkflow = """
    name: chain
    collection: collection
    steps:
      - id: upper
        use: template
        scope: panel
        inputs: {text: text}
        params: {template: "<{text}>"}
      - id: joined
        use: template
        inputs: {texts: upper}
        params: {template: "{texts}", separator: " + "}
      - id: final
        use: template
        inputs: {a: joined}
        params: {template: "final: {a}"}
      - id: independent
        use: template
        inputs: {texts: texts}
        params: {template: "{texts}", lowercase: true}
    """
