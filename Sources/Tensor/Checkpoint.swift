import Foundation

/// The weights of a model folder: one `model.safetensors`, or shards listed by
/// `model.safetensors.index.json` (`{"weight_map": {tensor: shard file}}`).
///
/// Model loaders read tensors through a `CheckpointReader`, which checks shapes against what
/// the config implies and records which names were used, so a loader can fail on missing
/// and on unused keys.
public final class Checkpoint: Sendable {
    /// The folder, or the single file's URL when opened from a file.
    public let location: URL
    /// The opened files, in name order.
    public let files: [SafetensorsFile]
    private let fileForTensor: [String: Int]

    /// Name of the single-file checkpoint inside a model folder.
    public static let singleFileName = "model.safetensors"
    /// Name of the shard index inside a model folder.
    public static let indexFileName = "model.safetensors.index.json"

    /// Opens a model folder (index if present, else `model.safetensors`) or a `.safetensors` file.
    public init(url: URL) throws {
        location = url
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw SafetensorsError(file: url, "does not exist")
        }
        if !isDirectory.boolValue {
            files = [try SafetensorsFile(url: url)]
            fileForTensor = Dictionary(uniqueKeysWithValues: files[0].tensors.keys.map { ($0, 0) })
            return
        }
        let index = url.appendingPathComponent(Self.indexFileName)
        let single = url.appendingPathComponent(Self.singleFileName)
        if FileManager.default.fileExists(atPath: index.path) {
            let weightMap = try Self.readIndex(index)
            let shardNames = Array(Set(weightMap.values)).sorted()
            var opened: [SafetensorsFile] = []
            for shard in shardNames {
                guard !shard.contains("/"), !shard.hasPrefix(".") else {
                    throw SafetensorsError(file: index, "shard name '\(shard)' must be a plain file name in the folder")
                }
                opened.append(try SafetensorsFile(url: url.appendingPathComponent(shard)))
            }
            var map: [String: Int] = [:]
            for (tensor, shard) in weightMap {
                let i = shardNames.firstIndex(of: shard)!
                guard opened[i].tensors[tensor] != nil else {
                    throw SafetensorsError(file: opened[i].url, tensor: tensor, "listed in \(Self.indexFileName) but not present in the shard")
                }
                map[tensor] = i
            }
            for (i, f) in opened.enumerated() {
                for name in f.tensors.keys where map[name] != i {
                    throw SafetensorsError(file: f.url, tensor: name, "present in the shard but not mapped to it by \(Self.indexFileName)")
                }
            }
            files = opened
            fileForTensor = map
        } else if FileManager.default.fileExists(atPath: single.path) {
            files = [try SafetensorsFile(url: single)]
            fileForTensor = Dictionary(uniqueKeysWithValues: files[0].tensors.keys.map { ($0, 0) })
        } else {
            throw SafetensorsError(file: url, "no \(Self.singleFileName) or \(Self.indexFileName) in the folder")
        }
    }

    private static func readIndex(_ url: URL) throws -> [String: String] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SafetensorsError(file: url, "cannot read: \(error.localizedDescription)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SafetensorsError(file: url, "is not a JSON object")
        }
        guard let map = object["weight_map"] as? [String: Any] else {
            throw SafetensorsError(file: url, "missing object 'weight_map'")
        }
        var out: [String: String] = [:]
        for (k, v) in map {
            guard let s = v as? String else { throw SafetensorsError(file: url, tensor: k, "weight_map value is not a string") }
            out[k] = s
        }
        return out
    }

    /// All tensor names across shards, sorted.
    public var names: [String] { fileForTensor.keys.sorted() }

    /// Whether a tensor exists.
    public func contains(_ name: String) -> Bool { fileForTensor[name] != nil }

    /// The header entry and file of a tensor.
    public func info(_ name: String) -> (file: SafetensorsFile, info: SafetensorsTensorInfo)? {
        guard let i = fileForTensor[name], let info = files[i].tensors[name] else { return nil }
        return (files[i], info)
    }

    /// Reads a tensor as float32.
    public func tensor(named name: String) throws -> Tensor {
        guard let i = fileForTensor[name] else {
            throw SafetensorsError(file: location, tensor: name, "not present in the checkpoint")
        }
        return try files[i].tensor(named: name)
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
    /// The config file the expected shapes come from, for messages.
    public let configName: String

    public init(_ checkpoint: Checkpoint, prefix: String = "", configName: String = "config.json") {
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.configName = configName
    }

    /// Reads `prefix + name`, which must exist and have exactly `shape`.
    public func take(_ name: String, shape: [Int]) throws -> Tensor {
        let full = prefix + name
        guard let (file, info) = checkpoint.info(full) else {
            throw SafetensorsError(file: checkpoint.location, tensor: full, "required by the model but missing from the checkpoint")
        }
        guard info.shape == shape else {
            throw SafetensorsError(file: file.url, tensor: full, "has shape \(info.shape), but \(configName) implies \(shape)")
        }
        used.insert(full)
        return try file.tensor(named: full)
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
            throw SafetensorsError(file: checkpoint.location,
                                   "\(left.count) tensor(s) not used by the model: \(shown)\(left.count > 20 ? ", …" : "")")
        }
    }
}
