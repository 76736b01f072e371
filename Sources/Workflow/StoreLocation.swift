import Foundation
import Stories

extension WorkflowSpec {
    /// The project store folder: `--store` from the command line (relative to the current directory),
    /// else the file's `store:` (relative to the workflow file's folder), else `./Output/store`.
    /// Both may be absolute or start with `~` (see ``UserPath``).
    public func storeRoot(commandLine: String?) -> URL {
        if let commandLine { return UserPath.commandLine(commandLine) }
        if let store { return UserPath.resolve(store, relativeTo: folder) }
        return UserPath.commandLine("Output/store")
    }
}
