import Foundation
import Stories
import Store

/// Reuses a workflow's last plan when nothing it was computed from has changed, so a no-op rerun neither
/// re-parses an unchanged collection nor recomputes unchanged fingerprints.
///
/// A plan is two layers, cached with two keys:
/// - the items and their fingerprints, a pure function of the spec, the collection's content and the
///   models: keyed by ``key(specDigest:spec:registry:models:store:)`` — the workflow file's bytes and
///   `--set` overrides, every step's kind, version, params with defaults and model digest (exactly the
///   step's part of each fingerprint), and the content hash of the collection file — plus the content
///   hashes of the images the collection names, checked on load;
/// - the statuses (new, stale, cached) and orphans, which depend on the store's results and item states
///   only: valid while the store's generation (bumped by triggers on every write to either) is the one
///   they were computed at; otherwise recomputed from the cached fingerprints.
///
/// File content hashes come from the store's size+mtime hash cache, as for images and models elsewhere.
/// Collections from importers (VIST, VisDial, CSV) read folders and several files, so they are planned
/// afresh each time; native and StoryWorld collections (one `collection.jsonl`) are cached.
/// What a plan needs to be saved to the cache again (after a run): its key and the images it was checked against.
struct PlanCacheEntry: Sendable {
    var key: String
    var images: [(path: String, hash: String)]
}

struct PlanCache {
    /// Bump when the planner or this encoding changes meaning.
    static let formatVersion = 1
    let store: any ResultStore

    // MARK: Keys

    /// The content key of a plan's fingerprints, or nil when the collection cannot be keyed (importers, a
    /// world not generated yet, a missing file).
    func key(specDigest: String, spec: WorkflowSpec, registry: StepRegistry, models: [String: ResolvedModel]) throws -> String? {
        guard let file = Self.collectionFile(spec, storeRoot: store.root), let hash = try collectionHash(file) else { return nil }
        var parts = ["storyloom plan cache v\(Self.formatVersion)", "spec \(specDigest)", "collection \(file.path) \(hash)"]
        for step in spec.steps {
            let (_, _, _, builder) = try Planner.stepParts(step, registry: registry, models: models)
            parts.append("step \(step.id) \(builder.signature)")
        }
        return Hashing.sha256Hex(parts.joined(separator: "\n"))
    }

    /// The collection file's content hash (from the store's size+mtime cache).
    func collectionHash(_ file: URL) throws -> String? {
        try store.fileHashes(for: [file])[file.path]
    }

    /// The workflow file's path and text and the overrides: everything the parsed spec comes from.
    static func specDigest(file: URL, yaml: String, overrides: [String]) -> String {
        Hashing.sha256Hex(file.standardizedFileURL.path + "\n" + Hashing.sha256Hex(yaml) + "\n" + overrides.joined(separator: "\n"))
    }

    /// The one file a native or StoryWorld collection is read from.
    static func collectionFile(_ spec: WorkflowSpec, storeRoot: URL) -> URL? {
        let location: URL
        switch spec.collection.source {
        case .native(let path):
            location = UserPath.resolve(path, relativeTo: spec.folder)
        case .importer("native", let options):
            guard let path = options["path"] else { return nil }
            location = UserPath.resolve(path, relativeTo: spec.folder)
        case .world:
            guard let folder = WorldCache.existingFolder(spec.collection.source, storeRoot: storeRoot) else { return nil }
            location = folder
        case .importer:
            return nil
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location.path, isDirectory: &isDir) else { return nil }
        return isDir.boolValue ? location.appendingPathComponent(NativeCollection.fileName) : location
    }

    /// The image files a collection names, with their content hashes as the column fingerprints used them.
    static func images(_ collection: StoryCollection, columns: ColumnFingerprints) -> [(path: String, hash: String)] {
        var out: [(String, String)] = []
        for (e, entry) in collection.entries.enumerated() {
            for (p, panel) in entry.panels.enumerated() {
                guard let image = panel.image else { continue }
                out.append((ColumnFingerprints.url(image, root: collection.root).path, columns.panels[e][p].image ?? ""))
            }
        }
        return out
    }

    // MARK: Load and save

    /// A cached plan for `key`, or nil. Statuses are reused when the store's generation is the one they were
    /// computed at (and, for `explainStale`, when they carry reasons); else recomputed by `planner`.
    func load(spec: WorkflowSpec, specDigest: String, key: String, models: [String: ResolvedModel], planner: Planner,
              explainStale: Bool, loadCollection: @escaping @Sendable () throws -> StoryCollection) throws -> Plan? {
        guard let cached = try store.cachedPlan(workflow: spec.name), cached.key == key else { return nil }
        var reader = ByteReader(cached.data)
        guard let decoded = try? Self.decode(&reader, spec: spec, registry: planner.registry, models: models) else { return nil }
        // Images are checked here: their list comes from the collection, which is not read on a hit.
        if !decoded.images.isEmpty {
            let hashes = try store.fileHashes(for: decoded.images.map { URL(fileURLWithPath: $0.path) })
            for image in decoded.images where (hashes[image.path] ?? "") != image.hash { return nil }
        }
        let cache = self
        let imageDigest = Self.imageDigest(decoded.images)
        let entryCount = decoded.entryCount
        let registry = planner.registry
        let source = PlanCollection {
            // Loaded on first use: it must still be the collection the plan was made from.
            let file = Self.collectionFile(spec, storeRoot: cache.store.root)
            let hashBefore = try file.flatMap { try cache.collectionHash($0) }
            let collection = try loadCollection()
            let columns = try ColumnFingerprints(collection: collection, store: cache.store)
            guard let file, try cache.collectionHash(file) == hashBefore,
                  try cache.key(specDigest: specDigest, spec: spec, registry: registry, models: models) == key,
                  collection.entries.count == entryCount, Self.imageDigest(Self.images(collection, columns: columns)) == imageDigest else {
                throw StepError("the collection of workflow \(spec.name) changed after it was planned: run it again")
            }
            return (collection, columns)
        }
        var plan = Plan(spec: spec, steps: decoded.steps, entryCount: decoded.entryCount, collectionRoot: decoded.root,
                        source: source, generation: cached.generation)
        plan.cacheEntry = PlanCacheEntry(key: key, images: decoded.images)
        plan.origin = .cached
        let generation = try store.generation()
        if cached.generation != generation || (explainStale && !cached.explained) {
            plan.origin = .cachedFingerprints
            plan.steps = try planner.withStatuses(plan.steps, workflow: spec.name, explainStale: explainStale)
            plan.generation = try store.generation() == generation ? generation : nil
            try save(plan, explained: explainStale)
        }
        return plan
    }

    /// Stores `plan` under its cache entry's key; its statuses count only where it knows the generation they
    /// belong to.
    func save(_ plan: Plan, explained: Bool) throws {
        guard let entry = plan.cacheEntry else { return }
        var writer = ByteWriter()
        Self.encode(plan, images: entry.images, into: &writer)
        try store.saveCachedPlan(.init(key: entry.key, generation: plan.generation, explained: explained, data: writer.data),
                                 workflow: plan.spec.name)
    }

    static func imageDigest(_ images: [(path: String, hash: String)]) -> String {
        Hashing.sha256Hex(images.map { "\($0.path)\u{1F}\($0.hash)" }.joined(separator: "\u{1E}"))
    }

    // MARK: Encoding

    static let magic: UInt64 = 0x534C_504C_414E_0001   // "SLPLAN" + format

    static func encode(_ plan: Plan, images: [(path: String, hash: String)], into w: inout ByteWriter) {
        w.u64(magic)
        w.int(plan.entryCount)
        w.string(plan.collectionRoot.path)
        w.int(images.count)
        for image in images { w.string(image.path); w.string(image.hash) }
        w.int(plan.steps.count)
        for step in plan.steps {
            w.string(step.spec.id)
            w.int(step.orphans.count)
            for o in step.orphans { w.string(o) }
            w.int(step.items.count)
            for item in step.items {
                w.string(item.id)
                w.int(item.entryIndex)
                w.int(item.panelIndex ?? -1)
                w.string(item.fingerprint)
                w.int(item.inputFingerprints.count)
                for (name, fp) in item.inputFingerprints.sorted(by: { $0.key < $1.key }) {
                    w.string(name)
                    w.u8(fp == nil ? 0 : 1)
                    w.string(fp ?? "")
                }
                w.u64(item.seed)
                switch item.status {
                case .new: w.u8(0)
                case .stale(let reasons):
                    w.u8(1)
                    w.int(reasons.count)
                    for r in reasons { w.string(r) }
                case .cached: w.u8(2)
                }
                w.u8(item.stateChanged ? 1 : 0)
            }
        }
    }

    struct Decoded {
        var entryCount: Int
        var root: URL
        var images: [(path: String, hash: String)]
        var steps: [StepPlan]
    }

    /// Decodes against the current spec: the steps must be the spec's, in the planner's order (the key
    /// already guarantees it; a mismatch is treated as a miss).
    static func decode(_ r: inout ByteReader, spec: WorkflowSpec, registry: StepRegistry,
                       models: [String: ResolvedModel]) throws -> Decoded {
        guard try r.u64() == magic else { throw ByteReader.Malformed() }
        let entryCount = try r.int()
        let root = URL(fileURLWithPath: try r.string())
        var images: [(path: String, hash: String)] = []
        let imageCount = try r.int()
        images.reserveCapacity(imageCount)
        for _ in 0..<imageCount { images.append((try r.string(), try r.string())) }
        let order = try StepGraph(spec.steps).order()
        guard try r.int() == order.count else { throw ByteReader.Malformed() }
        var steps: [StepPlan] = []
        for stepSpec in order {
            guard try r.string() == stepSpec.id else { throw ByteReader.Malformed() }
            let (kind, params, model, builder) = try Planner.stepParts(stepSpec, registry: registry, models: models)
            let orphans = try (0..<r.int()).map { _ in try r.string() }
            let count = try r.int()
            var items: [PlannedItem] = []
            items.reserveCapacity(count)
            var index: [String: Int] = [:]
            index.reserveCapacity(count)
            for i in 0..<count {
                let id = try r.string()
                let entryIndex = try r.int()
                let panel = try r.int()
                let fingerprint = try r.string()
                var inputs: [String: String?] = [:]
                for _ in 0..<(try r.int()) {
                    let name = try r.string()
                    let present = try r.u8() == 1
                    let fp = try r.string()
                    inputs[name] = present ? fp : String?.none
                }
                let seed = try r.u64()
                let status: ItemStatus
                switch try r.u8() {
                case 0: status = .new
                case 1: status = .stale(try (0..<r.int()).map { _ in try r.string() })
                case 2: status = .cached
                default: throw ByteReader.Malformed()
                }
                let stateChanged = try r.u8() == 1
                items.append(PlannedItem(id: id, entryIndex: entryIndex, panelIndex: panel < 0 ? nil : panel, fingerprint: fingerprint,
                                         inputFingerprints: inputs, seed: seed, status: status, stateChanged: stateChanged,
                                         builder: builder))
                index[id] = i
            }
            steps.append(StepPlan(spec: stepSpec, kind: kind, params: params, model: model, items: items, index: index,
                                  orphans: orphans))
        }
        guard r.atEnd else { throw ByteReader.Malformed() }
        return Decoded(entryCount: entryCount, root: root, images: images, steps: steps)
    }
}
