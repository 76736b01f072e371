import Foundation
import Stories
import Store

/// Loads the collection a workflow names.
public enum CollectionLoader {
    public static func load(_ spec: WorkflowSpec, storeRoot: URL) throws -> StoryCollection {
        let c = spec.collection
        var collection: StoryCollection
        do {
            switch c.source {
            case .native(let path):
                collection = try NativeCollection.read(at: UserPath.resolve(path, relativeTo: spec.folder),
                                                       allowOutsideRoot: c.allowOutsideRoot)
            case .importer(let kind, let options):
                collection = try CollectionImporter.load(kind: kind, options: options, base: spec.folder,
                                                         allowOutsideRoot: c.allowOutsideRoot)
            case .world(let seed, let stories, let dialogues, let display):
                collection = try WorldCache.collection(seed: seed, stories: stories, dialogues: dialogues,
                                                       displaySize: display, storeRoot: storeRoot)
            }
        } catch let error as WorkflowErrors {
            throw error
        } catch {
            throw WorkflowErrors(errors: [WorkflowError(c.location, "collection: \(error)")])
        }
        if let limit = c.limit, collection.entries.count > limit {
            collection.entries = Array(collection.entries.prefix(limit))
        }
        return collection
    }
}
