"""For make_screenshot.py, inside the GIMP GUI (python-fu-eval): opens the image, fills an
elliptic selection with esm-fill-selection, shows the image, then opens the ESM Texture from
Selection dialog (interactive run) so the screenshot shows both. Settings come from
$ESM_GUI (JSON: image, select [x, y, w, h], args for both procedures, "esm-fill-selection"
and "esm-texture-from-selection": args for one, ready: file to write the X display to once the image is shown)."""
import json
import os

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

with open(os.environ["ESM_GUI"]) as _file:
    _settings = json.load(_file)

_image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(_settings["image"]))
_layer = _image.get_layers()[0]
_image.select_ellipse(Gimp.ChannelOps.REPLACE, *_settings["select"])
for _name, _mode in (("esm-fill-selection", Gimp.RunMode.NONINTERACTIVE),
                     ("esm-texture-from-selection", Gimp.RunMode.INTERACTIVE)):
    _procedure = Gimp.get_pdb().lookup_procedure(_name)
    _config = _procedure.create_config()
    _config.set_property("run-mode", _mode)
    _config.set_property("image", _image)
    _config.set_core_object_array("drawables", [_layer])
    for _key, _value in {**_settings["args"], **_settings.get(_name, {})}.items():
        _config.set_property(_key, _value)
    if _mode == Gimp.RunMode.INTERACTIVE:
        _image.get_layers()[0].set_visible(True)
        Gimp.Display.new(_image)
        Gimp.displays_flush()
        with open(_settings["ready"], "w") as _ready:
            _ready.write(os.environ["DISPLAY"])  # the host grabs this X display
    _result = _procedure.run(_config)
    assert _result.index(0) == Gimp.PDBStatusType.SUCCESS, _result.index(1)
if _settings.get("done"):
    with open(_settings["done"], "w") as _done:
        json.dump([[layer.get_name(), layer.get_width(), layer.get_height()] for layer in _image.get_layers()], _done)
