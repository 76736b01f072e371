import ArgumentParser
import Foundation
import Stories
import Workflow

extension WorkflowOptions {
    /// The workflow opened against its store (`--store` is relative to the current directory).
    func session(registry: StepRegistry) throws -> WorkflowSession {
        try WorkflowSession(file: UserPath.commandLine(workflow), overrides: overrides,
                            options: StoreOptions(store: store, media: media), registry: registry)
    }
}

/// A message for the user, printed without a stack trace; exits non-zero.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

/// Runs a command body, printing user-facing errors (located workflow errors, store and collection
/// problems) as they are, without ArgumentParser's "Error:" prefix, and exiting 1.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CLIError {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw ExitCode.failure
    } catch let error as WorkflowErrors {
        // Already located and prefixed: `file:line:column: error: …`.
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw ExitCode.failure
    } catch let error as CustomStringConvertible & Error {
        FileHandle.standardError.write(Data(("error: \(error.description)\n").utf8))
        throw ExitCode.failure
    }
}
