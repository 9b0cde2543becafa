"""The templates code names, once (each is a templates/*.yaml file; what each builds is in its
YAML). A module of its own, with no imports: the backends' class data (`default_template`) name
one at import time, and core/templates.py's dataclasses are not for `app list`."""

SEGFORMER = "MMSegmentation_SegFormer"  # Clarifai's SegFormer template; also the local engine's
UNET = "segcli_UNet"
EFFNET = "segcli_EfficientNetLite0"  # ImageNet-pretrained encoder, no network: the offline default
