import Foundation
import Steps
import Stories
import Testing
@testable import Workflow

/// The typed params of the step kinds: what each struct declares is what validation checks, what the
/// runner receives and what the fingerprint hashes.
@Suite struct StepParamsTests {
    let parser = SpecParser(registry: StandardSteps.registry)
    let file = URL(fileURLWithPath: "/tmp/wf.yaml")

    func errors(_ yaml: String) -> [String] {
        do {
            _ = try parser.parse(yaml: yaml, file: file)
            return []
        } catch let e as WorkflowErrors {
            return e.errors.map(\.description)
        } catch {
            return ["unexpected: \(error)"]
        }
    }

    @Test func specsComeFromTheStructInDeclarationOrder() {
        let specs = ThumbnailStep.Params.specs
        #expect(specs.map(\.name) == ["width", "height", "filter", "mode"])
        #expect(specs[0].kind == .int(min: 1, max: 8192))
        #expect(specs[0].defaultValue == .number(128))
        #expect(specs[2].kind == .choice(["nearest", "bilinear", "bicubic", "lanczos"]))
        #expect(specs[3].defaultValue == .string("stretch"))
        // camelCase properties are snake_case params; required ones have no default; timeouts stay out of results.
        let command = CommandStep.Params.specs
        #expect(command.map(\.name) == ["run", "output", "output_ext", "env", "version", "timeout", "seed", "mode"])
        #expect(command[0].defaultValue == nil)
        #expect(command.first { $0.name == "timeout" }?.affectsResult == false)
        #expect(GILLCaptionStep.Params.specs.map(\.name) == ["prompt", "max_tokens", "sampling", "top_p", "temperature"])
        #expect(NoParams.specs.isEmpty)
    }

    @Test func decodingFillsDefaultsAndReadsEnums() throws {
        let p = try GenerateStep.Params.decode(["scheduler": .string("ddim"), "steps": .number(10), "negative_prompt": .string("blur")])
        #expect(p.scheduler == .ddim)
        #expect(p.steps == 10)
        #expect(p.guidance == 7.5)
        #expect(p.negativePrompt == "blur")
        #expect(p.imagesPerItem == 1)
        let t = try TemplateStep.Params.decode(["template": .string("{a}")])
        #expect(t.template == "{a}" && t.separator == " " && t.rounds == 1000 && !t.lowercase)
    }

    @Test func resolvedParamsAreWhatTheFingerprintHashes() throws {
        // Every param present, integers as JSON numbers, enums as their names.
        let values = try ThumbnailStep.kind.resolveParams(["width": .number(32)])
        #expect(values == ["width": .number(32), "height": .number(128), "filter": .string("bicubic"), "mode": .string("stretch")])
    }

    @Test func decodingAWrongTypeNamesTheParam() {
        #expect(throws: StepError.self) { try ThumbnailStep.Params.decode(["width": .string("wide")]) }
        do {
            _ = try ThumbnailStep.Params.decode(["mode": .string("sideways")])
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("mode"))
        }
    }

    @Test func validationGoldensForTypedParams() {
        let e = errors("""
            collection: c
            steps:
              - id: g
                use: generate
                inputs: {text: text}
                params: {scheduler: pdnm, steps: 0, guidance: high, images_per_item: 2.5}
              - id: c
                use: command
                params: {output: picture, timeout: 0}
              - id: r
                use: retrieve
                inputs: {query: text, pool: text}
                params: {k: 5, exclude_same_entry: "yes"}
            """)
        #expect(e == [
            "/tmp/wf.yaml:6:25: error: param \"scheduler\" of step \"g\": expected one of ddim, pndm, euler, dpm++2m, got \"pdnm\" (did you mean \"pndm\"?)",
            "/tmp/wf.yaml:6:38: error: param \"steps\" of step \"g\": expected an integer ≥ 1, got 0",
            "/tmp/wf.yaml:6:51: error: param \"guidance\" of step \"g\": expected a number, got \"high\"",
            "/tmp/wf.yaml:6:74: error: param \"images_per_item\" of step \"g\": expected an integer, got 2.5",
            "/tmp/wf.yaml:3:5: error: step \"g\" (generate) needs \"model:\" naming a model of kind stable-diffusion",
            "/tmp/wf.yaml:9:22: error: param \"output\" of step \"c\": expected one of image, text, number, got \"picture\"",
            "/tmp/wf.yaml:9:40: error: param \"timeout\" of step \"c\": expected a number ≥ 0.1, got 0.0",
            "/tmp/wf.yaml:7:5: error: step \"c\" (command) needs param \"run\": the program and its arguments, e.g. [convert, \"{image}\", -blur, 0x2, \"{out}\"]",
            "/tmp/wf.yaml:13:40: error: param \"exclude_same_entry\" of step \"r\": expected true or false, got \"yes\"",
        ])
    }

    @Test func fastCanonicalJSONEqualsTheCodableEncoding() throws {
        let params: [String: JSONValue] = ["template": .string("a/b \"q\""), "rounds": .number(3), "lowercase": .bool(false)]
        let model = ResolvedModel(name: "m", kind: "clip", folder: URL(fileURLWithPath: "/m"), digest: "abc123")
        let builder = try FingerprintComponents.Builder(kind: TemplateStep.kind, model: model, params: params)
        let fast = builder.json(inputs: [("a", "ff00.text"), ("texts", FingerprintComponents.missingInput)], seed: 42)
        let full = FingerprintComponents(inputs: ["a": "ff00.text", "texts": "missing"], kind: "template", model: "abc123",
                                         params: params, seed: 42, version: TemplateStep.kind.version)
        #expect(fast == (try full.canonicalJSON()))
        #expect(FingerprintComponents.decode(Data(fast.utf8)) == full)
        #expect(builder.json(inputs: [], seed: 0).hasPrefix("{\"inputs\":{},\"kind\":\"template\""))
    }

    @Test func readmeStepTableIsTheCatalog() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let begin = try #require(text.range(of: "<!-- steps:begin (storyloom steps --markdown) -->\n"))
        let end = try #require(text.range(of: "\n<!-- steps:end -->"))
        #expect(String(text[begin.upperBound..<end.lowerBound]) == StandardSteps.registry.catalogMarkdown,
                "README's step table is out of date: paste `storyloom steps --markdown` between the markers")
    }
}
