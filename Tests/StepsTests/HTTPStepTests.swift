import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Imaging
import Stories
import Store
import Testing
@testable import Steps
@testable import Workflow

/// A small inference server on 127.0.0.1 (Python's standard library, written here), with endpoints that
/// answer, fail, stall, or talk nonsense.
final class TestInferenceServer: @unchecked Sendable {
    let process = Process()
    let port: Int
    static let script = #"""
    import base64, json, sys, time, threading
    from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
    attempts = {}
    lock = threading.Lock()
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def send(self, status, body, headers=()):
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            for k, v in headers: self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            inputs, item = req["inputs"], req["item"]
            if self.path == "/echo":
                text = inputs.get("text", "")
                self.send(200, {"text": text.upper(), "number": len(text) + req["seed"] % 1})
            elif self.path == "/image":
                self.send(200, {"image": inputs["image"]})
            elif self.path == "/flaky":
                with lock:
                    n = attempts[item] = attempts.get(item, 0) + 1
                if n == 1: self.send(500, "busy")
                elif n == 2: self.send(429, "slow down", [("Retry-After", "0")])
                else: self.send(200, {"text": "ok after %d" % n})
            elif self.path == "/always500": self.send(503, "down for maintenance")
            elif self.path == "/slow":
                time.sleep(3); self.send(200, {"text": "late"})
            elif self.path == "/malformed": self.send(200, "<html>not json</html>")
            elif self.path == "/error": self.send(200, {"error": "model exploded"})
            elif self.path == "/notfound": self.send(404, "no such route")
            else: self.send(404, "?")
    s = ThreadingHTTPServer(("127.0.0.1", 0), H)
    open(sys.argv[1], "w").write(str(s.server_address[1]))
    s.serve_forever()
    """#

    init() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-http-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let script = dir.appendingPathComponent("server.py"), portFile = dir.appendingPathComponent("port")
        try Self.script.write(to: script, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, portFile.path]
        // Not the test's own output: a server left running would hold a pipe reading it open.
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let text = try? String(contentsOf: portFile, encoding: .utf8), let p = Int(text) { port = p; return }
            usleep(20_000)
        }
        process.terminate()
        throw StepError("the test server did not start")
    }

    func url(_ path: String) -> JSONValue { .string("http://127.0.0.1:\(port)\(path)") }

    /// SIGKILL, not waited for: Foundation's `waitUntilExit` spins on Linux, and the server keeps no state.
    deinit { kill(process.processIdentifier, SIGKILL) }
}

@Suite(.serialized) struct HTTPStepTests {
    @Test func answersBecomeOutputsAndImagesEnterTheStore() async throws {
        let server = try TestInferenceServer()
        let h = try StepHarness()
        let out = try await h.run(HTTPStep.kind, params: ["url": server.url("/echo")],
                                  inputs: [["text": .text("a ball")], ["text": .text("night falls")]])
        #expect(h.outputs(out[0])?["text"] == .text("A BALL"))
        #expect(h.outputs(out[1])?["number"] == .number(11))
        let image = try h.imageFile(StepHarness.gradient(8, 6), name: "g.png")
        let echoed = try await h.run(HTTPStep.kind, params: ["url": server.url("/image")], inputs: [["image": image]])
        let ref = try #require(h.outputs(echoed[0])?["image"]?.image)
        #expect(try Image.load(contentsOf: h.media.url(hash: ref.hash, ext: ref.ext)) == StepHarness.gradient(8, 6))
    }

    @Test func retriesBusyServersAndGivesUpWithTheReason() async throws {
        let server = try TestInferenceServer()
        let h = try StepHarness()
        let flaky = try await h.run(HTTPStep.kind, params: ["url": server.url("/flaky")], inputs: [["text": .text("x")]])
        #expect(h.outputs(flaky[0])?["text"] == .text("ok after 3"))
        let down = try await h.run(HTTPStep.kind, params: ["url": server.url("/always500"), "retries": .number(1)],
                                   inputs: [["text": .text("x")]])
        #expect(h.error(down[0])?.contains("HTTP 503: down for maintenance (after 2 attempts)") == true)
        let missing = try await h.run(HTTPStep.kind, params: ["url": server.url("/notfound")], inputs: [["text": .text("x")]])
        #expect(h.error(missing[0])?.contains("HTTP 404") == true)
    }

    @Test func timeoutsMalformedAnswersAndServerErrorsFailTheirItem() async throws {
        let server = try TestInferenceServer()
        let h = try StepHarness()
        let slow = try await h.run(HTTPStep.kind, params: ["url": server.url("/slow"), "timeout": .number(0.5)],
                                   inputs: [["text": .text("x")]])
        #expect(h.error(slow[0])?.contains("did not answer within 0.5 s") == true)
        let bad = try await h.run(HTTPStep.kind, params: ["url": server.url("/malformed")], inputs: [["text": .text("x")]])
        #expect(h.error(bad[0])?.contains("expected a JSON object") == true)
        let failed = try await h.run(HTTPStep.kind, params: ["url": server.url("/error")], inputs: [["text": .text("x")]])
        #expect(h.error(failed[0])?.hasSuffix("model exploded") == true)
    }

    @Test func aBadURLIsRefusedBeforeAnythingIsSent() async throws {
        let h = try StepHarness()
        await #expect(throws: StepError.self) {
            _ = try await h.run(HTTPStep.kind, params: ["url": .string("ftp://example/x")], inputs: [["text": .text("x")]])
        }
    }

    @Test func theEndpointAndVersionAreInTheFingerprintButTimeoutsAreNot() {
        let specs = Dictionary(HTTPStep.Params.specs.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(specs["url"]?.affectsResult == true && specs["version"]?.affectsResult == true)
        #expect(specs["timeout"]?.affectsResult == false && specs["concurrency"]?.affectsResult == false
                && specs["retries"]?.affectsResult == false)
    }
}

/// `command` with `mode: batch`: one process per batch, JSON lines in and out.
@Suite struct CommandBatchTests {
    let upper = #"import json,sys\nfor line in sys.stdin:\n    r = json.loads(line)\n    print(json.dumps({"text": r["inputs"]["text"].upper(), "number": r["seed"] % 1}))"#

    func run(_ program: String, items: [String]) async throws -> (StepHarness, [ItemOutcome]) {
        let h = try StepHarness()
        let script = h.root.appendingPathComponent("model.py")
        try program.replacingOccurrences(of: "\\n", with: "\n").write(to: script, atomically: true, encoding: .utf8)
        let out = try await h.run(CommandStep.kind, params: ["run": .array([.string("python3"), .string(script.path)]),
                                                             "mode": .string("batch")],
                                  inputs: items.map { ["text": .text($0)] })
        return (h, out)
    }

    @Test func oneProcessAnswersEveryItemOfTheBatchInOrder() async throws {
        let (h, out) = try await run(upper, items: ["a ball", "night falls", "it rolls"])
        #expect(out.compactMap { h.outputs($0)?["text"] } == [.text("A BALL"), .text("NIGHT FALLS"), .text("IT ROLLS")])
    }

    @Test func aMalformedOrMissingLineFailsOnlyItsItem() async throws {
        let program = #"import json,sys\nlines = sys.stdin.readlines()\nprint(json.dumps({"text": "first"}))\nprint("not json")"#
        let (h, out) = try await run(program, items: ["a", "b", "c"])
        #expect(h.outputs(out[0])?["text"] == .text("first"))
        #expect(h.error(out[1])?.contains("line 2") == true && h.error(out[1])?.contains("expected a JSON object") == true)
        #expect(h.error(out[2])?.contains("answered 2 of 3 items") == true)
    }

    @Test func aProcessKilledMidBatchFailsTheBatch() async throws {
        let program = #"import json,os,sys\nprint(json.dumps({"text": "one"}), flush=True)\nos.kill(os.getpid(), 9)"#
        let (h, out) = try await run(program, items: ["a", "b"])
        #expect(out.allSatisfy { h.error($0)?.contains("killed by signal 9") == true })
    }
}
