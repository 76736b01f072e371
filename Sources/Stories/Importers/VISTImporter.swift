import Foundation

/// Imports the Visual Storytelling dataset (VIST, Huang et al. 2016) as distributed: the
/// story-in-sequence (SIS) and descriptions-in-isolation (DII) annotation files.
///
/// Both files hold `images`, `albums`, `info`, `type` and `annotations`, a list of one-element lists of
/// sentence dicts. SIS sentences carry `story_id` and `worker_arranged_photo_order`; stories are grouped
/// by `story_id` (in order of first appearance) and their panels sorted by that order. DII sentences have
/// no story id, only `album_id` and `photo_order_in_story`; the file lists each described photo sequence
/// as consecutive annotations, so a DII sequence is a run of one album's annotations whose order keeps
/// rising, and its entry id is `ALBUM-N` (the N-th such run of that album, from 1).
///
/// Images are looked up in the images folder by Flickr photo id (`ID.jpg`, `.jpeg` or `.png`). A missing
/// photo leaves the panel without an image and adds a warning to its entry; it never fails the import.
public enum VISTImporter {
    /// Which of VIST's annotation files is read.
    public enum Tier: String, Sendable {
        case storyInSequence = "story-in-sequence"
        case descriptionsInIsolation = "descriptions-in-isolation"
    }

    /// What to import and how.
    public struct Options: Sendable {
        /// The annotation file, e.g. `val.story-in-sequence.json` or `val.description-in-isolation.json`.
        public var annotations: URL
        /// The folder of photos named by Flickr id; it becomes the collection root.
        public var images: URL
        /// Which annotation file this is.
        public var tier: Tier
        /// Use the worker's `original_text` instead of VIST's lower-cased, tokenised `text`.
        public var useOriginalText: Bool
        /// Import at most this many stories (in file order).
        public var limit: Int?

        public init(annotations: URL, images: URL, tier: Tier = .storyInSequence,
                    useOriginalText: Bool = false, limit: Int? = nil) {
            self.annotations = annotations
            self.images = images
            self.tier = tier
            self.useOriginalText = useOriginalText
            self.limit = limit
        }
    }

    /// Reads the annotation file and builds one story entry per VIST story (SIS) or photo sequence (DII).
    public static func load(_ options: Options) throws -> StoryCollection {
        let file = try JSONFile.decode(VISTFile.self, from: options.annotations)
        let path = options.annotations.path
        try checkType(file.type, tier: options.tier, file: path)
        let index = try ImageIndex(folder: options.images)
        let albums = Dictionary((file.albums ?? []).map { ($0.id.value, $0) }, uniquingKeysWith: { first, _ in first })

        var sentences: [(annotation: Int, sentence: VISTSentence)] = []
        sentences.reserveCapacity(file.annotations.count)
        for (i, group) in file.annotations.enumerated() {
            guard !group.isEmpty else {
                throw CollectionError(file: path, "annotations[\(i)]: expected a one-element list of sentences, found an empty list")
            }
            for sentence in group { sentences.append((i, sentence)) }
        }

        let groups = options.tier == .storyInSequence
            ? try groupByStory(sentences, file: path)
            : try groupBySequence(sentences, file: path)

        var entries: [Entry] = []
        for group in groups {
            if let limit = options.limit, entries.count >= limit { break }
            entries.append(try entry(for: group, albums: albums, index: index, options: options))
        }
        let name = options.annotations.deletingPathExtension().lastPathComponent
        return StoryCollection(name: name, root: index.folder, entries: entries)
    }

    /// A story or DII sequence before it becomes an entry: its id and sentences in panel order.
    struct Group {
        var id: String
        var sentences: [(annotation: Int, sentence: VISTSentence)]
        var order: [Int]
    }

    /// SIS: by `story_id`, stories in order of first appearance, panels by `worker_arranged_photo_order`.
    static func groupByStory(_ sentences: [(annotation: Int, sentence: VISTSentence)], file: String) throws -> [Group] {
        var groups: [Group] = []
        var slot: [String: Int] = [:]
        for item in sentences {
            let s = item.sentence
            guard let storyID = s.storyID?.value else {
                throw CollectionError(file: file, "missing key \"story_id\" in annotations[\(item.annotation)][0] (a story-in-sequence sentence)")
            }
            guard let order = s.workerArrangedPhotoOrder else {
                throw CollectionError(file: file, "missing key \"worker_arranged_photo_order\" in annotations[\(item.annotation)][0]")
            }
            if let k = slot[storyID] {
                groups[k].sentences.append(item)
                groups[k].order.append(order)
            } else {
                slot[storyID] = groups.count
                groups.append(Group(id: storyID, sentences: [item], order: [order]))
            }
        }
        return groups.map(sortedByOrder)
    }

    /// DII: runs of consecutive annotations of one album with rising `photo_order_in_story`.
    static func groupBySequence(_ sentences: [(annotation: Int, sentence: VISTSentence)], file: String) throws -> [Group] {
        var groups: [Group] = []
        var runsPerAlbum: [String: Int] = [:]
        var current: (album: String, lastOrder: Int)?
        for item in sentences {
            let s = item.sentence
            guard let album = s.albumID?.value else {
                throw CollectionError(file: file, "missing key \"album_id\" in annotations[\(item.annotation)][0]")
            }
            guard let order = s.photoOrderInStory else {
                throw CollectionError(file: file, "missing key \"photo_order_in_story\" in annotations[\(item.annotation)][0] (a descriptions-in-isolation sentence)")
            }
            if let c = current, c.album == album, order > c.lastOrder, !groups.isEmpty {
                groups[groups.count - 1].sentences.append(item)
                groups[groups.count - 1].order.append(order)
            } else {
                let n = (runsPerAlbum[album] ?? 0) + 1
                runsPerAlbum[album] = n
                groups.append(Group(id: "\(album)-\(n)", sentences: [item], order: [order]))
            }
            current = (album, order)
        }
        return groups
    }

    static func sortedByOrder(_ group: Group) -> Group {
        // Stable: equal orders keep file order.
        let permutation = group.order.indices.sorted { (group.order[$0], $0) < (group.order[$1], $1) }
        return Group(id: group.id, sentences: permutation.map { group.sentences[$0] }, order: permutation.map { group.order[$0] })
    }

    static func entry(for group: Group, albums: [String: VISTAlbum], index: ImageIndex, options: Options) throws -> Entry {
        var panels: [Panel] = []
        var warnings: [String] = []
        var seenOrders = Set<Int>()
        for (k, item) in group.sentences.enumerated() {
            let s = item.sentence
            guard let photo = s.photoFlickrID?.value else {
                throw CollectionError(file: options.annotations.path, "missing key \"photo_flickr_id\" in annotations[\(item.annotation)][0]")
            }
            let textKey = options.useOriginalText ? "original_text" : "text"
            guard let text = options.useOriginalText ? s.originalText : s.text else {
                throw CollectionError(file: options.annotations.path, "missing key \"\(textKey)\" in annotations[\(item.annotation)][0]")
            }
            let image = index.path(stem: photo)
            if image == nil { warnings.append("panel \(k + 1): image \(photo) not found in \(index.displayName)") }
            if !seenOrders.insert(group.order[k]).inserted {
                warnings.append("panel \(k + 1): photo order \(group.order[k]) appears twice in this story")
            }
            var meta: [String: JSONValue] = ["order": .number(Double(group.order[k]))]
            meta["photo_flickr_id"] = .string(photo)
            if let id = s.storyletID?.value { meta["storylet_id"] = .string(id) }
            if let worker = s.workerID { meta["worker_id"] = .string(worker) }
            // Keep the variant not used as the panel text, so neither is lost.
            if options.useOriginalText, let t = s.text { meta["text"] = .string(t) }
            if !options.useOriginalText, let t = s.originalText { meta["original_text"] = .string(t) }
            panels.append(Panel(image: image, text: text, metadata: .object(meta)))
        }

        let first = group.sentences.first?.sentence
        var meta: [String: JSONValue] = ["source": .string("vist-" + (options.tier == .storyInSequence ? "sis" : "dii"))]
        if let album = first?.albumID?.value {
            meta["album_id"] = .string(album)
            if let a = albums[album] {
                if let title = a.title { meta["album_title"] = .string(title) }
                if let description = a.description { meta["album_description"] = .string(description) }
                if let label = a.vistLabel { meta["vist_label"] = .string(label) }
            }
        }
        if let tier = first?.tier { meta["tier"] = .string(tier) }
        if let setting = first?.setting { meta["setting"] = .string(setting) }
        return Entry(id: group.id, kind: .story, panels: panels, metadata: .object(meta), warnings: warnings)
    }

    /// Refuses a DII file read as SIS and the reverse, which would otherwise fail on a missing key.
    static func checkType(_ type: String?, tier: Tier, file: String) throws {
        guard let type else { return }
        let isSIS = type.contains("sequence")
        let isDII = type.contains("isolation")
        if tier == .storyInSequence && isDII {
            throw CollectionError(file: file, "type is \"\(type)\": this is a descriptions-in-isolation file; import it as vist-dii")
        }
        if tier == .descriptionsInIsolation && isSIS {
            throw CollectionError(file: file, "type is \"\(type)\": this is a story-in-sequence file; import it as vist-sis")
        }
    }
}

/// The parts of a VIST annotation file the importer reads (`images` and `info` are skipped).
struct VISTFile: Decodable {
    var type: String?
    var albums: [VISTAlbum]?
    var annotations: [[VISTSentence]]
}

struct VISTAlbum: Decodable {
    var id: FlexibleID
    var title: String?
    var description: String?
    var vistLabel: String?

    enum CodingKeys: String, CodingKey {
        case id, title, description
        case vistLabel = "vist_label"
    }
}

/// One annotation sentence; SIS and DII share most keys, so tier-specific ones are optional here and
/// required by the grouping step that needs them (which names the annotation when one is missing).
struct VISTSentence: Decodable {
    var storyID: FlexibleID?
    var storyletID: FlexibleID?
    var albumID: FlexibleID?
    var photoFlickrID: FlexibleID?
    var workerArrangedPhotoOrder: Int?
    var photoOrderInStory: Int?
    var text: String?
    var originalText: String?
    var workerID: String?
    var tier: String?
    var setting: String?

    enum CodingKeys: String, CodingKey {
        case storyID = "story_id"
        case storyletID = "storylet_id"
        case albumID = "album_id"
        case photoFlickrID = "photo_flickr_id"
        case workerArrangedPhotoOrder = "worker_arranged_photo_order"
        case photoOrderInStory = "photo_order_in_story"
        case text
        case originalText = "original_text"
        case workerID = "worker_id"
        case tier, setting
    }
}
