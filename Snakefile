# repgeom: geometry of transformer representations. See README.md and config/config.yaml.


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/tokens.smk"
include: "rules/models.smk"
include: "rules/extract.smk"
include: "rules/metrics.smk"
include: "rules/figures.smk"
include: "rules/shape_of_learning.smk"
include: "rules/languages.smk"


rule all:
    default_target: True
    input:
        rules.spine.input,
        rules.shape_of_learning.input,
        rules.languages.input,
