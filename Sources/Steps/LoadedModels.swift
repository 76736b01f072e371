import Foundation
import Models
import Workflow

/// Models loaded once per process and shared by every step that names the same folder. Keyed by folder and
/// digest, so a changed checkpoint is loaded anew.
final class LoadedModels<Model: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var models: [String: Model] = [:]
    private let missing: String
    private let load: @Sendable (ResolvedModel) throws -> Model

    /// `missing` is the error when a step was given no model.
    init(missing: String, load: @escaping @Sendable (ResolvedModel) throws -> Model) {
        self.missing = missing
        self.load = load
    }

    func get(_ model: ResolvedModel?) throws -> Model {
        guard let model else { throw StepError(missing) }
        let key = model.folder.path + "#" + model.digest
        if let m = lock.withLock({ models[key] }) { return m }
        let loaded = try load(model)
        lock.withLock { models[key] = loaded }
        return loaded
    }
}

/// The process-wide caches of each model kind.
enum SharedModels {
    static let clip = LoadedModels<CLIPModel>(missing: "this step needs model: naming a CLIP model") {
        try CLIPModel.load(from: $0.folder)
    }
    static let stableDiffusion = LoadedModels<StableDiffusionPipeline>(
        missing: "generate needs model: naming a stable-diffusion model (a diffusers folder)") {
        try StableDiffusionPipeline(folder: $0.folder)
    }
    static let gill = LoadedModels<GILLModel>(missing: "this step needs model: naming a GILL folder (kind gill)") {
        try GILLModel.load(from: $0.folder)
    }
    /// A GILL model with its image decoder (the folder's sd/ or config `decoder`).
    static let gillGenerators = LoadedModels<GILLImageGenerator>(missing: "this step needs model: naming a GILL folder (kind gill)") {
        try GILLImageGenerator.load(gill: try gill.get($0))
    }
}
