import Foundation
import Steps
import Testing
@testable import Workflow

/// Golden messages of workflow validation: file:line:column, the key, and a suggestion for near misses.
@Suite struct SpecValidationTests {
    let parser = SpecParser(registry: StandardSteps.registry)
    let file = URL(fileURLWithPath: "/tmp/wf.yaml")

    func errors(_ yaml: String, overrides: [String] = []) -> [String] {
        do {
            _ = try parser.parse(yaml: yaml, file: file, overrides: overrides)
            return []
        } catch let e as WorkflowErrors {
            return e.errors.map(\.description)
        } catch {
            return ["unexpected: \(error)"]
        }
    }

    @Test func validWorkflowParses() throws {
        let spec = try parser.parse(yaml: chainWorkflow, file: file)
        #expect(spec.name == "chain")
        #expect(spec.steps.map(\.id) == ["upper", "joined", "final", "independent"])
        #expect(spec.steps[1].inputs["texts"]?.source == .step(id: "upper", output: nil, lastPanel: false))
        #expect(spec.steps[0].scope == .panel)
    }

    @Test func unknownTopLevelKeySuggestsNearMiss() {
        #expect(errors("name: x\ncolection: c\nsteps: []\n") == [
            "/tmp/wf.yaml:2:1: error: unknown key \"colection\" in workflow (did you mean \"collection\"?); allowed: name, description, collection, models, steps, gallery, store, media",
            "/tmp/wf.yaml:1:1: error: missing required key \"collection\" (a path, an importer, or world: {seed, stories, dialogues})",
        ])
    }

    @Test func unknownStepKindSuggestsNearMiss() {
        let e = errors("collection: c\nsteps:\n  - id: a\n    use: thumbnial\n")
        let known = StandardSteps.registry.names.joined(separator: ", ")
        #expect(e == ["/tmp/wf.yaml:4:10: error: unknown step kind \"thumbnial\" (did you mean \"thumbnail\"?); known kinds: \(known)"])
    }

    @Test func unknownParamAndBadTypes() {
        let e = errors("""
            collection: c
            steps:
              - id: t
                use: thumbnail
                inputs: {image: image}
                params: {widht: 10, height: tall, filter: bicubik}
            """)
        #expect(e == [
            "/tmp/wf.yaml:6:14: error: unknown param \"widht\" for step kind \"thumbnail\" (did you mean \"width\"?); its params: width, height, filter, mode",
            "/tmp/wf.yaml:6:33: error: param \"height\" of step \"t\": expected an integer, got \"tall\"",
            "/tmp/wf.yaml:6:47: error: param \"filter\" of step \"t\": expected one of nearest, bilinear, bicubic, lanczos, got \"bicubik\" (did you mean \"bicubic\"?)",
        ])
    }

    @Test func missingRequiredParamAndInput() {
        let e = errors("collection: c\nsteps:\n  - id: s\n    use: score\n")
        #expect(e == [
            "/tmp/wf.yaml:3:5: error: step \"s\" (score) needs param \"metric\": the metric",
            "/tmp/wf.yaml:3:5: error: step \"s\" (score) needs input \"a\": first column (e.g. the ground-truth image)",
            "/tmp/wf.yaml:3:5: error: step \"s\" (score) needs input \"b\": second column (e.g. a generated image)",
        ])
    }

    @Test func danglingReferencesAreRejected() {
        let e = errors("""
            collection: c
            steps:
              - id: a
                use: template
                inputs: {text: b.text, a: imagez}
                params: {template: x}
            """)
        #expect(e == [
            "/tmp/wf.yaml:5:31: error: input \"a\" of step \"a\": \"imagez\" is neither a step id nor a collection column (did you mean \"images\"?); columns for entry steps: images, texts, last_image, last_text, context_images, context_texts, caption, rounds, id",
            "/tmp/wf.yaml:5:20: error: input \"text\" of step \"a\" refers to unknown step \"b\"",
        ])
    }

    @Test func cyclesAreRejectedBeforeAnythingRuns() {
        let e = errors("""
            collection: c
            steps:
              - id: a
                use: template
                inputs: {text: b}
                params: {template: x}
              - id: b
                use: template
                inputs: {text: a}
                params: {template: y}
            """)
        #expect(e == ["/tmp/wf.yaml:3:9: error: steps form a cycle: a → b → a"])
    }

    @Test func unknownOutputOfAStep() {
        let e = errors("""
            collection: c
            steps:
              - id: a
                use: template
                params: {template: x}
              - id: b
                use: template
                inputs: {text: a.txt}
                params: {template: y}
            """)
        #expect(e == ["/tmp/wf.yaml:8:20: error: input \"text\" of step \"b\": step \"a\" (template) has no output \"txt\" (did you mean \"text\"?); its outputs: text"])
    }

    @Test func yamlSyntaxErrorsHaveLineAndColumn() {
        let e = errors("collection: c\nsteps:\n  - id: a\n   use: [x\n")
        #expect(e.count == 1)
        #expect(e.first?.hasPrefix("/tmp/wf.yaml:4:") == true)
        #expect(e.first?.contains("invalid YAML") == true)
    }

    @Test func overridesAreChecked() throws {
        #expect(errors(chainWorkflow, overrides: ["final.templte=x"]) == [
            "error: --set \"final.templte=x\": unknown param \"templte\" for step kind \"template\" (did you mean \"template\"?)"])
        #expect(errors(chainWorkflow, overrides: ["nope.template=x"]) == ["error: --set \"nope.template=x\": no step \"nope\""])
        #expect(errors(chainWorkflow, overrides: ["final"]) == ["error: --set \"final\": expected STEP.PARAM=VALUE"])
        let spec = try parser.parse(yaml: chainWorkflow, file: file, overrides: ["upper.lowercase=true"])
        #expect(spec.step("upper")?.params["lowercase"] == .bool(true))
    }

    @Test func wildcardOverrideSetsEveryStepThatHasTheParam() throws {
        let spec = try parser.parse(yaml: chainWorkflow, file: file, overrides: ["*.separator=;"])
        #expect(spec.steps.map { $0.params["separator"] } == Array(repeating: .string(";"), count: 4))
        #expect(errors(chainWorkflow, overrides: ["*.sepraator=;"]) == [
            "error: --set \"*.sepraator=;\": no step of this workflow has a param \"sepraator\" (did you mean \"separator\"?)"])
    }

    @Test func duplicateIdsAndScopeMisuse() {
        let e = errors("""
            collection: c
            steps:
              - id: a
                use: template
                params: {template: x}
              - id: a
                use: thumbnail
                scope: entry
                panels: last
                inputs: {image: image}
            """)
        #expect(e.sorted() == [
            "/tmp/wf.yaml:6:9: error: duplicate step id \"a\" (first defined at /tmp/wf.yaml:3:9)",
            "/tmp/wf.yaml:10:21: error: input \"image\" of step \"a\": \"image\" is neither a step id nor a collection column (image is a column of panel steps) (did you mean \"images\"?); columns for entry steps: images, texts, last_image, last_text, context_images, context_texts, caption, rounds, id",
            "/tmp/wf.yaml:9:13: error: \"panels\" applies to panel steps only; this step runs once per entry",
        ].sorted())
    }
}

@Suite struct GalleryChartSpecTests {
    let parser = SpecParser(registry: StandardSteps.registry)
    let file = URL(fileURLWithPath: "/tmp/wf.yaml")

    func errors(_ yaml: String) -> [String] {
        do { _ = try parser.parse(yaml: yaml, file: file); return [] } catch let e as WorkflowErrors {
            return e.errors.map(\.description)
        } catch { return ["\(error)"] }
    }

    static let base = """
        collection: c
        steps:
          - id: a
            use: score
            inputs: {a: image, b: image}
            params: {metric: psnr}
          - id: t
            use: template
            inputs: {text: last_text}
            params: {template: x}

        """

    @Test func chartsParseAndNullLeavesAGap() throws {
        let spec = try parser.parse(yaml: Self.base + """
            gallery:
              charts:
                - {title: PSNR, y: dB, x: [one, two], series: {first: [a.score, ~], second: [null, a]}, kind: bar}
            """, file: file)
        let chart = try #require(spec.gallery.charts.first)
        #expect(chart.title == "PSNR" && chart.yLabel == "dB" && chart.xLabels == ["one", "two"] && chart.kind == "bar")
        #expect(chart.series.map(\.name) == ["first", "second"])
        #expect(chart.series[0].columns.map { $0?.text } == ["a.score", nil])
    }

    @Test func chartErrorsNameTheSeriesAndWhatIsWrong() {
        let e = errors(Self.base + """
            gallery:
              charts:
                - {title: C, x: [one, two], series: {s: [t.text, a.score, b.score]}, kind: pie}
            """)
        #expect(e.contains("/tmp/wf.yaml:13:80: error: chart kind must be line or bar, not \"pie\""))
        #expect(e.contains("/tmp/wf.yaml:13:45: error: series \"s\" has 3 values for 2 x labels"))
        #expect(e.contains { $0.contains("chart \"C\", series \"s\": \"t.text\" is not a score; scores of step \"t\": none") })
        #expect(e.contains { $0.contains("chart \"C\", series \"s\": \"b.score\" is not a step output") })
    }
}
