import Workflow

/// The step kinds built into Storyloom.
public enum StandardSteps {
    public static var registry: StepRegistry {
        StepRegistry([ThumbnailStep.kind, CommandStep.kind, TemplateStep.kind, EmbedStep.kind, RetrieveStep.kind,
                      GILLCaptionStep.kind, GILLEmbedStep.kind, GILLDecideStep.kind, GILLGenerateStep.kind, GILLStoryStep.kind,
                      ScoreStep.kind,
                      GenerateStep.kind, AttributeStep.kind, CaptionCheckStep.kind, DecisionOracleStep.kind, HTTPStep.kind])
    }
}
