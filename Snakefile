# repgeom: geometry of transformer representations. See README.md and config/config.yaml.
from repgeom.workflow.studies import registry

# The embedded default applies only when no --configfile is given: a config given on the
# command line is the whole config (plus the schema's defaults), never layered on this one.
# --config key=value overrides single keys of whichever config applies.
if not workflow.overwrite_configfiles:

    configfile: workflow.source_path("config/config.yaml")


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/tokens.smk"
include: "rules/models.smk"
include: "rules/weights.smk"
include: "rules/metrics.smk"
include: "rules/figures.smk"
include: "rules/extract.smk"


# every registered study's rules (repgeom.workflow.studies): each reads its plan from RUN
for _study in registry():

    include: str(_study.rules)


include: "rules/hub.smk"


rule all:
    default_target: True
    input:
        rules.spine.input,
        PATHS.results("manifest.tsv"),
        RUN.targets,
        expand(
            PATHS.hub_release("{m}", "{s}"),
            zip,
            m=[m for m, _ in HUB_RELEASES],
            s=[s for _, s in HUB_RELEASES],
        ),
