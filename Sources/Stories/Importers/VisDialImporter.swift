import Foundation

/// Imports Visual Dialog v1.0 (Das et al. 2017) as distributed: `visdial_1.0_{train,val,test}.json`.
///
/// The file is `{"version", "split", "data": {"questions": [...], "answers": [...], "dialogs": [...]}}`;
/// each dialog has an `image_id`, a `caption` and rounds whose `question` and `answer` are indices into
/// the shared string lists. Each dialog becomes a dialogue entry with id `image_id`: one panel (image and
/// caption) and its question/answer rounds.
///
/// VisDial stores questions without their question mark; one is appended for display unless
/// `appendQuestionMark` is off. The test split ends every dialog with a round that has a question but
/// no answer; that question is kept in the entry metadata as `unanswered_question` (with `round_id`)
/// rather than as a round, since a round is a question with its answer.
///
/// Images are found by the trailing number of their file names (`VisualDialog_val2018_000000000123.jpg`,
/// `COCO_train2014_000000000123.jpg`, `123.jpg`); a missing image is a warning on the entry.
public enum VisDialImporter {
    /// What to import and how.
    public struct Options: Sendable {
        /// The VisDial JSON file.
        public var annotations: URL
        /// The folder of the split's images (subfolders are searched too); it becomes the collection root.
        public var images: URL
        /// Append "?" to each question (VisDial strips it).
        public var appendQuestionMark: Bool
        /// Import at most this many dialogs (in file order).
        public var limit: Int?

        public init(annotations: URL, images: URL, appendQuestionMark: Bool = true, limit: Int? = nil) {
            self.annotations = annotations
            self.images = images
            self.appendQuestionMark = appendQuestionMark
            self.limit = limit
        }
    }

    /// Reads the file and builds one dialogue entry per dialog.
    public static func load(_ options: Options) throws -> StoryCollection {
        let file = try JSONFile.decode(VisDialFile.self, from: options.annotations)
        let path = options.annotations.path
        let index = try ImageIndex(folder: options.images)
        let data = file.data

        var entries: [Entry] = []
        var seen: [String: Int] = [:]
        for (d, dialog) in data.dialogs.enumerated() {
            if let limit = options.limit, entries.count >= limit { break }
            var rounds: [DialogueRound] = []
            var unanswered: String?
            for (r, round) in dialog.dialog.enumerated() {
                let at = "data.dialogs[\(d)].dialog[\(r)]"
                let question = try lookup(round.question, in: data.questions, list: "questions", at: at + ".question", file: path)
                let shown = options.appendQuestionMark && !question.hasSuffix("?") ? question + "?" : question
                guard let a = round.answer else {
                    // Only the last round may lack its answer (the test split's round to be answered).
                    guard r == dialog.dialog.count - 1 else {
                        throw CollectionError(file: path, "missing key \"answer\" in \(at) (only a dialog's last round may be unanswered)")
                    }
                    unanswered = shown
                    continue
                }
                let answer = try lookup(a, in: data.answers, list: "answers", at: at + ".answer", file: path)
                rounds.append(DialogueRound(question: shown, answer: answer))
            }

            var warnings: [String] = []
            let image = index.path(number: dialog.imageID)
            if image == nil { warnings.append("panel 1: image \(dialog.imageID) not found in \(index.displayName)") }

            // One dialog per image in VisDial; should an image repeat, later dialogs get a suffix to stay unique.
            var id = String(dialog.imageID)
            let n = (seen[id] ?? 0) + 1
            seen[id] = n
            if n > 1 {
                warnings.append("image \(dialog.imageID) has \(n) dialogs; this one is \(id)-\(n)")
                id += "-\(n)"
            }

            var meta: [String: JSONValue] = ["source": .string("visdial"), "image_id": .number(Double(dialog.imageID))]
            if let version = file.version { meta["version"] = .string(version) }
            if let split = file.split { meta["split"] = .string(split) }
            if let unanswered { meta["unanswered_question"] = .string(unanswered) }
            if let roundID = dialog.roundID { meta["round_id"] = .number(Double(roundID)) }
            entries.append(Entry(id: id, kind: .dialogue, panels: [Panel(image: image, text: dialog.caption)],
                                 rounds: rounds, metadata: .object(meta), warnings: warnings))
        }
        let name = options.annotations.deletingPathExtension().lastPathComponent
        return StoryCollection(name: name, root: index.folder, entries: entries)
    }

    static func lookup(_ i: Int, in strings: [String], list: String, at: String, file: String) throws -> String {
        guard strings.indices.contains(i) else {
            throw CollectionError(file: file, "\(at): index \(i) is outside data.\(list) (\(strings.count) entries)")
        }
        return strings[i]
    }
}

/// The parts of a VisDial v1.0 file the importer reads (`answer_options` and `gt_index` are skipped).
struct VisDialFile: Decodable {
    var version: String?
    var split: String?
    var data: VisDialData
}

struct VisDialData: Decodable {
    var questions: [String]
    var answers: [String]
    var dialogs: [VisDialDialog]
}

struct VisDialDialog: Decodable {
    var imageID: Int64
    var caption: String
    var dialog: [VisDialRound]
    /// Test split only: the number of the round left to answer.
    var roundID: Int?

    enum CodingKeys: String, CodingKey {
        case imageID = "image_id"
        case caption, dialog
        case roundID = "round_id"
    }
}

struct VisDialRound: Decodable {
    var question: Int
    var answer: Int?
}
