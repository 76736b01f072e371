import Foundation

/// One tensor as a weights file stores it: the file, its shape and stored dtype (safetensors
/// spelling: F32, F16, BF16, …), and its size in bytes.
public struct CheckpointEntry: Sendable, Equatable {
    public var url: URL
    public var shape: [Int]
    public var dtype: String
    public var byteCount: Int
}

/// The weights of a model folder: `model.safetensors`, shards listed by
/// `model.safetensors.index.json` (`{"weight_map": {tensor: shard file}}`), or — as transformers
/// saved them before safetensors — `pytorch_model.bin` or shards listed by
/// `pytorch_model.bin.index.json` (torch zip pickles, read by `TorchCheckpoint`).
///
/// Model loaders read tensors through a `CheckpointReader`, which checks shapes against what
/// the config implies and records which names were used, so a loader can fail on missing
/// and on unused keys.
public final class Checkpoint: Sendable {
    /// One opened weights file.
    enum Source: Sendable {
        case safetensors(SafetensorsFile)
        case torch(TorchCheckpoint)

        var url: URL {
            switch self {
            case let .safetensors(f): f.url
            case let .torch(f): f.url
            }
        }
        var names: [String] {
            switch self {
            case let .safetensors(f): Array(f.tensors.keys)
            case let .torch(f): Array(f.records.keys)
            }
        }
        func entry(_ name: String) -> CheckpointEntry? {
            switch self {
            case let .safetensors(f):
                guard let i = f.tensors[name] else { return nil }
                return CheckpointEntry(url: f.url, shape: i.shape, dtype: i.dtype.rawValue, byteCount: i.dataOffsets.count)
            case let .torch(f):
                guard let r = f.records[name] else { return nil }
                return CheckpointEntry(url: f.url, shape: r.shape, dtype: r.storage.dtype.safetensorsName,
                                       byteCount: r.shape.reduce(1, *) * r.storage.dtype.byteSize)
            }
        }
        func tensor(_ name: String) throws -> Tensor {
            switch self {
            case let .safetensors(f): try f.tensor(named: name)
            case let .torch(f): try f.tensor(named: name)
            }
        }
        func weight(_ name: String, precision: WeightPrecision) throws -> Weight {
            switch self {
            case let .safetensors(f): try f.weight(named: name, precision: precision)
            case let .torch(f): try f.weight(named: name, precision: precision)
            }
        }
        static func open(_ url: URL) throws -> Source {
            url.pathExtension == "safetensors" ? .safetensors(try SafetensorsFile(url: url)) : .torch(try TorchCheckpoint(url: url))
        }
    }

    /// The folder, or the single file's URL when opened from a file.
    public let location: URL
    private let sources: [Source]
    private let fileForTensor: [String: Int]

    /// Name of the single-file checkpoint inside a model folder.
    public static let singleFileName = "model.safetensors"
    /// Name of the shard index inside a model folder.
    public static let indexFileName = "model.safetensors.index.json"
    /// The torch pickle equivalents (transformers' `save_pretrained(safe_serialization=False)`).
    public static let torchSingleFileName = "pytorch_model.bin"
    public static let torchIndexFileName = "pytorch_model.bin.index.json"

    /// Opens a model folder (safetensors index, `model.safetensors`, torch index,
    /// `pytorch_model.bin`, in that order) or one `.safetensors` / torch file.
    public init(url: URL) throws {
        location = url
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TensorError(file: url, "does not exist")
        }
        if !isDirectory.boolValue {
            sources = [try Source.open(url)]
            fileForTensor = Dictionary(uniqueKeysWithValues: sources[0].names.map { ($0, 0) })
            return
        }
        let fm = FileManager.default
        var index: URL?
        var single: URL?
        for (i, s) in [(Self.indexFileName, Self.singleFileName), (Self.torchIndexFileName, Self.torchSingleFileName)] {
            if fm.fileExists(atPath: url.appendingPathComponent(i).path) { index = url.appendingPathComponent(i); break }
            if fm.fileExists(atPath: url.appendingPathComponent(s).path) { single = url.appendingPathComponent(s); break }
        }
        if let index {
            let weightMap = try Self.readIndex(index)
            let shardNames = Array(Set(weightMap.values)).sorted()
            var opened: [Source] = []
            for shard in shardNames {
                guard !shard.contains("/"), !shard.hasPrefix(".") else {
                    throw TensorError(file: index, "shard name '\(shard)' must be a plain file name in the folder")
                }
                opened.append(try Source.open(url.appendingPathComponent(shard)))
            }
            var map: [String: Int] = [:]
            for (tensor, shard) in weightMap {
                let i = shardNames.firstIndex(of: shard)!
                guard opened[i].entry(tensor) != nil else {
                    throw TensorError(file: opened[i].url, tensor: tensor, "listed in \(index.lastPathComponent) but not present in the shard")
                }
                map[tensor] = i
            }
            for (i, f) in opened.enumerated() {
                for name in f.names where map[name] != i {
                    throw TensorError(file: f.url, tensor: name, "present in the shard but not mapped to it by \(index.lastPathComponent)")
                }
            }
            sources = opened
            fileForTensor = map
        } else if let single {
            sources = [try Source.open(single)]
            fileForTensor = Dictionary(uniqueKeysWithValues: sources[0].names.map { ($0, 0) })
        } else {
            throw TensorError(file: url, "no \(Self.singleFileName), \(Self.indexFileName), \(Self.torchSingleFileName) or \(Self.torchIndexFileName) in the folder")
        }
    }

    private static func readIndex(_ url: URL) throws -> [String: String] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TensorError(file: url, "cannot read: \(error.localizedDescription)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TensorError(file: url, "is not a JSON object")
        }
        guard let map = object["weight_map"] as? [String: Any] else {
            throw TensorError(file: url, "missing object 'weight_map'")
        }
        var out: [String: String] = [:]
        for (k, v) in map {
            guard let s = v as? String else { throw TensorError(file: url, tensor: k, "weight_map value is not a string") }
            out[k] = s
        }
        return out
    }

    /// The opened safetensors files, in name order (empty for torch checkpoints).
    public var files: [SafetensorsFile] {
        sources.compactMap { if case let .safetensors(f) = $0 { f } else { nil } }
    }

    /// Every weights file, in name order.
    public var urls: [URL] { sources.map(\.url) }

    /// All tensor names across shards, sorted.
    public var names: [String] { fileForTensor.keys.sorted() }

    /// Whether a tensor exists.
    public func contains(_ name: String) -> Bool { fileForTensor[name] != nil }

    /// Where a tensor is stored, with its shape and dtype.
    public func info(_ name: String) -> CheckpointEntry? {
        guard let i = fileForTensor[name] else { return nil }
        return sources[i].entry(name)
    }

    /// Reads a tensor as float32.
    public func tensor(named name: String) throws -> Tensor {
        guard let i = fileForTensor[name] else {
            throw TensorError(file: location, tensor: name, "not present in the checkpoint")
        }
        return try sources[i].tensor(name)
    }

    /// Reads a weight matrix, keeping F16/BF16 storage under `.stored` (`Weight`).
    public func weight(named name: String, precision: WeightPrecision) throws -> Weight {
        guard let i = fileForTensor[name] else {
            throw TensorError(file: location, tensor: name, "not present in the checkpoint")
        }
        return try sources[i].weight(name, precision: precision)
    }
}

extension TorchStorageRecord.DType {
    /// The safetensors name of the dtype (F32, BF16, …), for uniform reports.
    public var safetensorsName: String {
        switch self {
        case .float32: "F32"
        case .float16: "F16"
        case .bfloat16: "BF16"
        case .float64: "F64"
        case .int64: "I64"
        case .int32: "I32"
        }
    }
}

/// Reads tensors from a `Checkpoint` for one model load, checking each shape against the one
/// the model's config implies and remembering which names were taken.
public final class CheckpointReader {
    public let checkpoint: Checkpoint
    /// Prepended to every requested name (e.g. `"vision_model."`).
    public var prefix: String
    /// Names already taken (full names, prefix included).
    public private(set) var used: Set<String> = []
    /// Shapes of the names taken (full names): what the model asked for.
    public private(set) var taken: [String: [Int]] = [:]
    /// The config file the expected shapes come from, for messages.
    public let configName: String

    /// How `takeWeight` keeps half-precision matrices (`take` always gives float32).
    public let precision: WeightPrecision

    public init(_ checkpoint: Checkpoint, prefix: String = "", configName: String = "config.json",
                precision: WeightPrecision = .stored) {
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.configName = configName
        self.precision = precision
    }

    /// Reads `prefix + name`, which must exist and have exactly `shape`, as float32.
    public func take(_ name: String, shape: [Int]) throws -> Tensor {
        try checkpoint.tensor(named: check(name, shape: shape))
    }

    /// Reads `prefix + name` (exactly `shape`) as a weight matrix in `precision`: what products read.
    public func takeWeight(_ name: String, shape: [Int]) throws -> Weight {
        try checkpoint.weight(named: check(name, shape: shape), precision: precision)
    }

    /// Checks `prefix + name` exists with `shape`, marks it used and returns the full name.
    private func check(_ name: String, shape: [Int]) throws -> String {
        let full = prefix + name
        guard let info = checkpoint.info(full) else {
            throw TensorError(file: checkpoint.location, tensor: full, "required by the model but missing from the checkpoint")
        }
        guard info.shape == shape else {
            throw TensorError(file: info.url, tensor: full, "has shape \(info.shape), but \(configName) implies \(shape)")
        }
        used.insert(full)
        taken[full] = shape
        return full
    }

    /// Marks names as deliberately ignored (buffers such as `position_ids` some exports include).
    public func ignore(_ full: String) {
        if checkpoint.contains(full) { used.insert(full) }
    }

    /// Names in the checkpoint that no `take`/`ignore` consumed.
    public var unused: [String] { checkpoint.names.filter { !used.contains($0) } }

    /// Throws, listing them, if any checkpoint tensor was left unused.
    public func requireAllUsed() throws {
        let left = unused
        guard left.isEmpty else {
            let shown = left.prefix(20).joined(separator: ", ")
            throw TensorError(file: checkpoint.location,
                                   "\(left.count) tensor(s) not used by the model: \(shown)\(left.count > 20 ? ", …" : "")")
        }
    }
}
