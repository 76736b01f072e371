import Foundation
import Stories
import Yams

/// Reads workflow YAML into a ``WorkflowSpec``, checking every key, reference and param before anything
/// runs. Errors carry file:line:column and, for near misses, a suggestion.
public struct SpecParser {
    public var registry: StepRegistry
    /// Known model kinds (for `models:` entries).
    public var modelKinds: [String]

    public init(registry: StepRegistry, modelKinds: [String] = ["clip", "stable-diffusion", "opt", "gill"]) {
        self.registry = registry
        self.modelKinds = modelKinds
    }

    static let topKeys = ["name", "description", "collection", "models", "steps", "gallery", "store", "media"]
    static let collectionKeys = ["path", "importer", "world", "allow_outside_root", "limit", "options"]
    static let worldKeys = ["seed", "stories", "dialogues", "display_size"]
    static let modelKeys = ["kind", "path"]
    static let stepKeys = ["id", "use", "params", "inputs", "model", "panels", "scope", "batch_size", "description"]
    static let galleryKeys = ["title", "columns", "charts"]
    static let chartKeys = ["title", "y", "x", "series", "kind"]

    /// Parses and validates a workflow file; `overrides` are `STEP.PARAM=VALUE` strings from `--set`
    /// (`*.PARAM=VALUE`: every step that has PARAM).
    public func parse(file: URL, overrides: [String] = []) throws -> WorkflowSpec {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw WorkflowErrors(errors: [WorkflowError(nil, "cannot read workflow file \(file.path)")])
        }
        return try parse(yaml: text, file: file, overrides: overrides)
    }

    public func parse(yaml: String, file: URL, overrides: [String] = []) throws -> WorkflowSpec {
        var ctx = Context(file: file.path)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw WorkflowErrors(errors: [WorkflowError(SourceLocation(file: file.path, line: 1, column: 1), "the workflow file is empty")])
            }
            root = node
        } catch let error as WorkflowErrors {
            throw error
        } catch let error as YamlError {
            throw WorkflowErrors(errors: [Self.yamlError(error, file: file.path)])
        } catch {
            throw WorkflowErrors(errors: [WorkflowError(nil, "\(file.path): not valid YAML: \(error)")])
        }
        guard let top = root.mapping else {
            throw WorkflowErrors(errors: [ctx.error(root, "a workflow must be a mapping with keys \(Self.topKeys.joined(separator: ", "))")])
        }
        ctx.checkKeys(top, allowed: Self.topKeys, what: "workflow")

        let name = top["name"].flatMap { ctx.string($0, key: "name") } ?? file.deletingPathExtension().lastPathComponent
        let collection = parseCollection(top["collection"], parent: root, ctx: &ctx)
        let models = parseModels(top["models"], ctx: &ctx)
        var steps = parseSteps(top["steps"], parent: root, models: models, ctx: &ctx)
        let gallery = parseGallery(top["gallery"], ctx: &ctx)
        let store = top["store"].flatMap { ctx.string($0, key: "store") }
        let media = top["media"].flatMap { ctx.string($0, key: "media") }
        let about = top["description"].flatMap { ctx.string($0, key: "description") }

        applyOverrides(overrides, to: &steps, ctx: &ctx)
        Self.resolveBareStepReferences(&steps)
        validateReferences(steps: steps, gallery: gallery, ctx: &ctx)

        if !ctx.errors.isEmpty { throw WorkflowErrors(errors: ctx.errors) }
        guard let collection else { throw WorkflowErrors(errors: [WorkflowError(nil, "missing collection")]) }
        return WorkflowSpec(name: name, file: file.standardizedFileURL, collection: collection, models: models,
                            steps: steps, gallery: gallery, store: store, media: media, about: about)
    }
}
