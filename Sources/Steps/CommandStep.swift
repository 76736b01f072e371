import Foundation
import Imaging
import Stories
import Workflow

/// `command`: runs an external program per item, with templated arguments and environment, and collects
/// the image, text or number it produces. This is how a user plugs in a model Storyloom does not run.
///
/// Templates in `run` and `env`: `{item}` (item id), `{seed}`, `{out}` (a file path the program should
/// write an image to), `{workdir}`, and each input by name: `{image}` (a file path), `{text}`, `{a}`…
/// A list input is joined with newlines. Non-zero exits and timeouts fail the item; stderr is kept.
public enum CommandStep {
    public static let kind = StepKind(
        name: "command", version: 1,
        summary: "Run an external program per item; collect the image, text or number it produces.",
        scope: .panel,
        params: Params.self,
        inputs: [
            InputSpec("image", required: false, doc: "an image column, passed as {image}"),
            InputSpec("text", required: false, doc: "a text column, passed as {text}"),
            InputSpec("a", required: false, doc: "any column, passed as {a}"),
            InputSpec("b", required: false, doc: "any column, passed as {b}"),
        ],
        outputs: ["image", "text", "number"],
        stochastic: true, defaultBatchSize: 4, scopeSelectable: true, scoreOutputs: ["number"],
        makeRunner: { params, _ in try Runner(params: params) })

    public enum Output: String, ParamChoice {
        case image, text, number
    }

    public enum OutputExtension: String, ParamChoice {
        case png, jpg
    }

    public enum Mode: String, ParamChoice {
        case item, batch
    }

    public struct Params: StepParams {
        @Param(help: "the program and its arguments, e.g. [convert, \"{image}\", -blur, 0x2, \"{out}\"]", required: true)
        public var run: [String] = []
        @Param(help: "image: the program writes {out}; text/number: read from its standard output") public var output = Output.text
        @Param(help: "extension of {out}") public var outputExt = OutputExtension.png
        @Param(help: "extra environment as KEY=VALUE templates") public var env: [String] = []
        @Param(help: "bump to invalidate cached results when the program changes") public var version = "1"
        @Param(help: "seconds before the program is stopped and the item fails", min: 0.1, max: 86400, affectsResult: false)
        public var timeout = 60.0
        @Param(help: "base seed; {seed} is derived per item", min: 0) public var seed = 0
        @Param(help: "item: one process per item; batch: one per batch, items as JSON lines on stdin, one JSON answer per line on stdout ({text|number|image|error}, as the http step's)")
        public var mode = Mode.item
        public init() {}
    }

    struct Runner: StepRunner {
        let argv: [String]
        let output: Output
        let ext: String
        let env: [String]
        let timeout: Double
        let mode: Mode

        init(params: Params) throws {
            argv = params.run
            guard !argv.isEmpty else { throw StepError("param run must name a program") }
            output = params.output
            ext = params.outputExt.rawValue
            env = params.env
            timeout = params.timeout
            mode = params.mode
        }

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            if mode == .batch { return try runBatch(items, services: services) }
            return items.map { item in
                if services.isCancelled() { return .failure("cancelled") }
                do { return .success(try runOne(item, services: services)) } catch { return .failure("\(error)") }
            }
        }

        func runOne(_ item: StepItem, services: StepServices) throws -> Outputs {
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-cmd-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: work) }
            let out = work.appendingPathComponent("out.\(ext)")
            var vars: [String: String] = ["item": item.id, "seed": String(item.seed), "out": out.path, "workdir": work.path]
            for (name, value) in item.inputs { vars[name] = render(value, services: services) }
            let args = argv.map { Template.fill($0, vars) }
            let environment = try environment(vars)
            let result = try Subprocess.run(args, environment: environment, directory: work, timeout: timeout,
                                            isCancelled: services.isCancelled)
            guard result.status == 0 else {
                throw StepError("\(args[0]) exited with status \(result.status): \(Subprocess.tail(result.stderr))")
            }
            let stdout = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            switch output {
            case .image:
                guard let data = FileManager.default.contents(atPath: out.path) else {
                    throw StepError("\(args[0]) exited 0 but wrote no image to {out}\(result.stderr.isEmpty ? "" : ": \(Subprocess.tail(result.stderr))")")
                }
                // Decoding checks the program really wrote an image.
                do { _ = try Image.load(contentsOf: out) } catch {
                    throw StepError("\(args[0]) wrote an unreadable image: \(error)")
                }
                let hash = try services.media.put(data, ext: ext)
                return ["image": .image(ImageRef(hash: hash, ext: ext))]
            case .number:
                guard let n = Double(stdout.split(whereSeparator: \.isWhitespace).last.map(String.init) ?? "") else {
                    throw StepError("\(args[0]) printed \"\(stdout.prefix(80))\", expected a number")
                }
                return ["number": .number(n)]
            case .text:
                return ["text": .text(stdout)]
            }
        }

        /// One process for the batch: a JSON line per item in, a JSON line per item out, in order. A process
        /// that dies or times out fails every item of its batch (recorded; the next run retries them).
        func runBatch(_ items: [StepItem], services: StepServices) throws -> [ItemOutcome] {
            if services.isCancelled() { throw CancellationError() }
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-cmd-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: work) }
            var input = Data()
            var outcomes = [ItemOutcome?](repeating: nil, count: items.count)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for (i, item) in items.enumerated() {
                do { input += try encoder.encode(try ItemWire.request(item, images: .path, services: services)) + Data("\n".utf8) }
                catch { outcomes[i] = .failure("\(error)"); input += Data("{}\n".utf8) }
            }
            let vars = ["workdir": work.path]
            let args = argv.map { Template.fill($0, vars) }
            let environment = try environment(vars)
            let result: Subprocess.Result
            do {
                result = try Subprocess.run(args, environment: environment, directory: work, timeout: timeout, input: input,
                                            isCancelled: services.isCancelled)
            } catch {
                if services.isCancelled() { throw CancellationError() }
                return items.map { _ in .failure("\(error)") }
            }
            guard result.status == 0 else {
                return items.map { _ in .failure("\(args[0]) exited with status \(result.status): \(Subprocess.tail(result.stderr))") }
            }
            let lines = result.stdout.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                .map { Data($0) }.filter { !$0.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") } }
            for i in items.indices where outcomes[i] == nil {
                guard i < lines.count else {
                    outcomes[i] = .failure("\(args[0]) answered \(lines.count) of \(items.count) items; none for this one")
                    continue
                }
                do { outcomes[i] = .success(try ItemWire.outputs(lines[i], source: "\(args[0]) line \(i + 1)", services: services)) }
                catch { outcomes[i] = .failure("\(error)") }
            }
            return outcomes.map { $0! }
        }

        /// This process's environment with the `env` templates filled in.
        func environment(_ vars: [String: String]) throws -> [String: String] {
            var environment = ProcessInfo.processInfo.environment
            for entry in env {
                let filled = Template.fill(entry, vars)
                guard let eq = filled.firstIndex(of: "=") else { throw StepError("env entry \"\(entry)\" is not KEY=VALUE") }
                environment[String(filled[..<eq])] = String(filled[filled.index(after: eq)...])
            }
            return environment
        }

        func render(_ value: Value, services: StepServices) -> String {
            switch value {
            case .image(let ref): return services.imageURL(ref).path
            case .text(let s): return s
            case .number(let n): return String(n)
            case .list(let l): return l.map { render($0, services: services) }.joined(separator: "\n")
            default: return value.summary
            }
        }
    }
}

/// `{name}` substitution; unknown names stay as written so a program's own braces survive.
enum Template {
    static func fill(_ template: String, _ vars: [String: String]) -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else { break }
            let name = String(rest[rest.index(after: open)..<close])
            if let v = vars[name] { out += v } else { out += rest[open...close] }
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }
}
