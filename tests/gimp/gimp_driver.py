"""Runs inside GIMP (python-fu-eval batch interpreter): builds the image a scenario describes,
calls one ESM procedure non-interactively and records what happened for the host-side test.

Input: the JSON file named by $ESM_GIMP_SCENARIO, with
  image: PNG path; gray, alpha: convert; precision: a Gimp.Precision name (e.g. "FLOAT_LINEAR");
  layer_rect: [x, y, w, h] the base layer is cropped/moved to (image coordinates);
  select: [x, y, w, h] rectangle or null; ellipse: bool; feather: radius in px;
  procedure, args: the call; out: folder for the results.
Output (in out/): result.json (status, message, layers top first, the new layer's box and
order), new.raw (the new layer as R'G'B'A u8), base_before.raw / base_after.raw (the base
layer as R'G'B'A u8), composite.png (what GIMP exports). Runs via exec(), so no __main__.
"""
import json
import os

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

RGBA = "R'G'B'A u8"


def layer_pixels(layer):
    return layer.get_buffer().get(Gegl.Rectangle.new(0, 0, layer.get_width(), layer.get_height()), 1.0, RGBA,
                                  Gegl.AbyssPolicy.NONE)


def box(layer):
    _, x, y = layer.get_offsets()
    return {"name": layer.get_name(), "x": x, "y": y, "width": layer.get_width(), "height": layer.get_height()}


def main(scenario):
    out = scenario["out"]
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(scenario["image"]))
    base = image.get_layers()[0]
    base.set_name("base")
    if scenario.get("gray"):
        image.convert_grayscale()
    if scenario.get("precision"):
        image.convert_precision(getattr(Gimp.Precision, scenario["precision"]))
    if scenario.get("alpha"):
        base.add_alpha()
    if scenario.get("layer_rect"):
        x, y, w, h = scenario["layer_rect"]
        base.resize(w, h, -x, -y)  # crop to the rect (offsets are relative to the layer)
    if scenario.get("select"):
        op = Gimp.ChannelOps.REPLACE
        if scenario.get("ellipse"):
            image.select_ellipse(op, *scenario["select"])
        else:
            image.select_rectangle(op, *scenario["select"])
        if scenario.get("feather"):
            Gimp.Selection.feather(image, scenario["feather"])
    with open(os.path.join(out, "base_before.raw"), "wb") as f:
        f.write(layer_pixels(base))
    selection = image.get_selection().get_buffer().get(
        Gegl.Rectangle.new(0, 0, image.get_width(), image.get_height()), 1.0, "Y u8", Gegl.AbyssPolicy.NONE)
    with open(os.path.join(out, "selection.raw"), "wb") as f:
        f.write(selection)

    procedure = Gimp.get_pdb().lookup_procedure(scenario["procedure"])
    assert procedure is not None, f"{scenario['procedure']} is not registered (plug-in not loaded)"
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [base])
    for name, value in scenario.get("args", {}).items():
        config.set_property(name, value)
    values = procedure.run(config)
    status = values.index(0)
    result = {"status": status.value_nick, "base": box(base), "image_size": [image.get_width(), image.get_height()],
              "base_type": image.get_base_type().value_nick, "precision": image.get_precision().value_nick}
    if status == Gimp.PDBStatusType.SUCCESS:
        layer = values.index(1)
        result["new_layer"] = box(layer)
        result["selected"] = [l.get_name() for l in image.get_selected_layers()]
        with open(os.path.join(out, "new.raw"), "wb") as f:
            f.write(layer_pixels(layer))
    else:
        result["message"] = values.index(1)
    result["layers"] = [box(layer) for layer in image.get_layers()]
    with open(os.path.join(out, "base_after.raw"), "wb") as f:
        f.write(layer_pixels(base))
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(os.path.join(out, "composite.png")),
                   None)
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    image.delete()


with open(os.environ["ESM_GIMP_SCENARIO"]) as _file:
    main(json.load(_file))
