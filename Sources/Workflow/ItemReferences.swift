import Foundation
import Stories

/// An item: one entry (story or dialogue) of a step, or one panel of it. Its text form, `story-00001` or
/// `story-00001#3` (1-based panel), is how the store, plans, galleries and `explain` name it.
public struct ItemID: Hashable, Sendable, CustomStringConvertible {
    public var entry: String
    /// 0-based panel index; nil for an entry item.
    public var panel: Int?

    public init(entry: String, panel: Int? = nil) {
        self.entry = entry
        self.panel = panel
    }

    public var description: String { panel.map { "\(entry)#\($0 + 1)" } ?? entry }
}

/// A collection column that a step input names, and what it reads of an entry. The Planner (which hashes
/// the values) and the InputResolver (which hands them to runners) both go through ``reading(panel:count:)``,
/// so a column's fingerprint and its value cannot disagree about which panels it covers.
public enum Column: String, CaseIterable, Sendable {
    case image, text, id, images, texts, caption, rounds
    case lastImage = "last_image", lastText = "last_text"
    case contextImages = "context_images", contextTexts = "context_texts"

    /// Columns for panel steps: this panel's image and text.
    public static let panelColumns: [Column] = [.image, .text, .id]
    /// Columns for entry steps: lists over the entry's panels, the last panel, dialogue rounds.
    public static let entryColumns: [Column] = [.images, .texts, .lastImage, .lastText, .contextImages, .contextTexts,
                                                .caption, .rounds, .id]

    public static func columns(for scope: StepScope) -> [Column] { scope == .panel ? panelColumns : entryColumns }

    public enum Field: Sendable { case image, text }

    public enum Reading: Sendable {
        /// A field of some panels: one value, or a list over them.
        case panels(Field, [Int], list: Bool)
        /// The item's own id.
        case itemID
        /// The entry's dialogue rounds.
        case rounds
    }

    /// What the column reads for an item on `panel` (nil: an entry item) of an entry with `count` panels;
    /// nil when there is nothing to read (a panel column for an entry item, or no panels).
    public func reading(panel: Int?, count: Int) -> Reading? {
        switch self {
        case .image: return panel.map { .panels(.image, [$0], list: false) }
        case .text: return panel.map { .panels(.text, [$0], list: false) }
        case .id: return .itemID
        case .images: return .panels(.image, Array(0..<count), list: true)
        case .texts: return .panels(.text, Array(0..<count), list: true)
        case .lastImage: return count > 0 ? .panels(.image, [count - 1], list: false) : nil
        case .lastText: return count > 0 ? .panels(.text, [count - 1], list: false) : nil
        case .contextImages: return .panels(.image, Array(0..<max(0, count - 1)), list: true)
        case .contextTexts: return .panels(.text, Array(0..<max(0, count - 1)), list: true)
        case .caption: return count > 0 ? .panels(.text, [0], list: false) : nil
        case .rounds: return .rounds
        }
    }
}

extension InputRef {
    /// The upstream items a reference to a step of `upstreamScope` reads for an item on `panel` of `entry`,
    /// and whether they make one value (`single`) or a list over the entry's panels.
    static func upstreamItems(upstreamScope: StepScope, lastPanel: Bool, entry: Entry,
                              panel: Int?) -> (ids: [ItemID], single: Bool) {
        switch (upstreamScope, panel) {
        case (.entry, _):
            return ([ItemID(entry: entry.id)], true)
        case (.panel, let p?) where !lastPanel:
            return ([ItemID(entry: entry.id, panel: p)], true)
        case (.panel, _):
            if lastPanel { return ([ItemID(entry: entry.id, panel: entry.panels.count - 1)], true) }
            // An entry step reading a panel step gets the list over the entry's panels.
            return (entry.panels.indices.map { ItemID(entry: entry.id, panel: $0) }, false)
        }
    }
}
