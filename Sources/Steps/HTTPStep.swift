import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Workflow

/// `http`: POSTs each item's inputs as JSON (``ItemWire``) to an inference server — a diffusers or
/// text-generation server on a GPU machine, say — and stores what it answers, cached per item like any
/// other step. The endpoint and a user-given `version` are in the fingerprint (bump it when the server's
/// model changes); timeouts, concurrency and retries are not. This step is the only one that uses the
/// network.
public enum HTTPStep {
    public struct Params: StepParams {
        @Param(help: "the endpoint, e.g. http://gpu-box:8000/generate", required: true) public var url = ""
        @Param(help: "the server's model version: part of the fingerprint, bump it when the model behind the URL changes")
        public var version = "1"
        @Param(help: "images as base64 in the JSON, or as file paths (a server that shares this filesystem)")
        public var images = ItemWire.ImageEncoding.base64
        @Param(help: "seconds before a request fails", min: 0.1, max: 86400, affectsResult: false) public var timeout = 60.0
        @Param(help: "requests in flight at once", min: 1, max: 256, affectsResult: false) public var concurrency = 4
        @Param(help: "retries after a 429 or 5xx answer or a lost connection, with exponential back-off", min: 0, max: 20,
               affectsResult: false)
        public var retries = 3
        @Param(help: "base seed; {seed} is derived per item and sent as \"seed\"", min: 0) public var seed = 0
        public init() {}
    }

    public static let kind = StepKind(
        name: "http", version: 1,
        summary: "POST each item's inputs as JSON to an inference server; store the text, number or image it answers.",
        scope: .panel,
        params: Params.self,
        inputs: [
            InputSpec("image", required: false, doc: "an image, sent as base64 (or a path)"),
            InputSpec("text", required: false, doc: "a text"),
            InputSpec("a", required: false, doc: "any value"),
            InputSpec("b", required: false, doc: "any value"),
        ],
        outputs: ["image", "text", "number"],
        stochastic: true, defaultBatchSize: 16, scopeSelectable: true, scoreOutputs: ["number"],
        makeRunner: { params, _ in try Runner(params: params) })

    struct Runner: StepRunner {
        let params: Params
        let endpoint: URL
        let session: URLSession

        init(params: Params) throws {
            guard let url = URL(string: params.url), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
                  url.host != nil else {
                throw StepError("param url \"\(params.url)\" is not an http:// or https:// URL")
            }
            self.params = params
            endpoint = url
            let configuration = URLSessionConfiguration.ephemeral
            configuration.timeoutIntervalForRequest = params.timeout
            configuration.timeoutIntervalForResource = params.timeout * Double(params.retries + 1) + 60
            configuration.httpMaximumConnectionsPerHost = params.concurrency
            session = URLSession(configuration: configuration)
        }

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            var outcomes = [ItemOutcome?](repeating: nil, count: items.count)
            try await withThrowingTaskGroup(of: (Int, ItemOutcome).self) { group in
                var next = 0
                func launch() {
                    guard next < items.count, !services.isCancelled() else { return }
                    let i = next
                    next += 1
                    group.addTask {
                        do { return (i, .success(try await post(items[i], services: services))) }
                        catch { return (i, .failure("\(error)")) }
                    }
                }
                for _ in 0..<params.concurrency { launch() }
                while let (i, outcome) = try await group.next() {
                    outcomes[i] = outcome
                    launch()
                }
            }
            // Items never sent (the run is being cancelled) leave the batch uncommitted; the next run sends them.
            if outcomes.contains(where: { $0 == nil }) { throw CancellationError() }
            return outcomes.map { $0! }
        }

        func post(_ item: StepItem, services: StepServices) async throws -> Outputs {
            let body = try JSONEncoder().encode(try ItemWire.request(item, images: params.images, services: services))
            var request = URLRequest(url: endpoint)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = body
            request.timeoutInterval = params.timeout
            var attempt = 0
            while true {
                let retryAfter: Double?
                let reason: String
                do {
                    let (data, response) = try await session.data(for: request)
                    let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                    if (200..<300).contains(status) {
                        return try ItemWire.outputs(data, source: "\(endpoint.absoluteString)", services: services)
                    }
                    let text = String(decoding: data.prefix(200), as: UTF8.self)
                    guard status == 429 || status >= 500 else {
                        throw StepError("\(endpoint.absoluteString) answered HTTP \(status): \(text)")
                    }
                    reason = "HTTP \(status): \(text)"
                    retryAfter = ((response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Retry-After")).flatMap(Double.init)
                } catch let error as URLError where error.code == .timedOut {
                    throw StepError("\(endpoint.absoluteString) did not answer within \(params.timeout) s")
                } catch let error as URLError {
                    reason = "\(error.localizedDescription)"
                    retryAfter = nil
                }
                guard attempt < params.retries, !services.isCancelled() else {
                    throw StepError("\(endpoint.absoluteString): \(reason) (after \(attempt + 1) attempt\(attempt == 0 ? "" : "s"))")
                }
                // Exponential back-off from 0.25 s, or what the server asks for (at most a minute).
                let delay = min(60, retryAfter ?? 0.25 * pow(2, Double(attempt)))
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                attempt += 1
            }
        }
    }
}
