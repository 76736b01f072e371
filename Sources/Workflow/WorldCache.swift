import Foundation
import Stories
import StoryWorld

/// StoryWorld sets named in workflows (`collection: {world: …}`) are generated once into the store's
/// `worlds/` folder and reused; generation is deterministic, so the folder name says everything.
enum WorldCache {
    static func folder(seed: UInt64, stories: Int, dialogues: Int, displaySize: Int?, storeRoot: URL) -> URL {
        let name = "seed\(seed)-stories\(stories)-dialogues\(dialogues)-px\(displaySize ?? 0)-v\(StoryWorldGenerator.version)"
        return storeRoot.appendingPathComponent("worlds").appendingPathComponent(name)
    }

    /// The generated folder of a `world` source, when it exists already.
    static func existingFolder(_ source: CollectionSource, storeRoot: URL) -> URL? {
        guard case .world(let seed, let stories, let dialogues, let display) = source else { return nil }
        let folder = folder(seed: seed, stories: stories, dialogues: dialogues, displaySize: display, storeRoot: storeRoot)
        let exists = FileManager.default.fileExists(atPath: folder.appendingPathComponent(NativeCollection.fileName).path)
        return exists ? folder : nil
    }

    static func collection(seed: UInt64, stories: Int, dialogues: Int, displaySize: Int?, storeRoot: URL) throws -> StoryCollection {
        let folder = folder(seed: seed, stories: stories, dialogues: dialogues, displaySize: displaySize, storeRoot: storeRoot)
        let fm = FileManager.default
        if !fm.fileExists(atPath: folder.appendingPathComponent(NativeCollection.fileName).path) {
            // Generate beside the final place and rename, so an interrupted generation is never mistaken
            // for a complete one.
            let tmp = storeRoot.appendingPathComponent("worlds/.tmp-\(UUID().uuidString)")
            var options = WorldOptions(seed: seed, stories: stories, dialogues: dialogues)
            options.displaySize = displaySize
            _ = try StoryWorldGenerator.generate(options, into: tmp)
            try? fm.removeItem(at: folder)
            try fm.moveItem(at: tmp, to: folder)
        }
        return try NativeCollection.read(at: folder)
    }
}
