#!/usr/bin/env python3
"""ESM for GIMP 3: Filters > Render > ESM Texture from Selection... and Filters > Enhance >
ESM Fill Selection... Both send the pixels to the ESM daemon and put the result on one new
layer above the active one (one undo step). docs/gimp.md describes them for users.

Procedures (stable names and arguments, for scripts and batch mode):
  esm-texture-from-selection: width, height (0 = the image's), tileable, seed, quality,
      phases, iterations (0 = from quality), style-weight, variety, smoothness, endpoint
      (empty = $ESM_ENDPOINT, else as installed), autostart -> new-layer
  esm-fill-selection: seed, quality, phases, iterations, style-weight, variety, smoothness,
      context (0 = automatic), endpoint (empty = $ESM_ENDPOINT, else as installed), autostart
      -> new-layer
"""
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GimpUi, GLib, GObject  # noqa: E402

import esm_gimp_daemon as daemon  # noqa: E402  (the plug-in's folder is sys.path[0]; puts vendor/ on sys.path)
import esm_gimp_pixels as pixels  # noqa: E402
from esm_client.plugin import DEFAULT_PRESET, PluginError, fill_margin, preset_fields, ui_range  # noqa: E402
from esm_contract.params import MAX_SIDE, PRESETS, FillParams, SynthesisParams  # noqa: E402  (stdlib only)
from esm_contract import schema  # noqa: E402

TEXTURE = "esm-texture-from-selection"
FILL = "esm-fill-selection"
RW = GObject.ParamFlags.READWRITE
G_MAXINT = 2**31 - 1


def _add_arguments(procedure, name):
    defaults = FillParams() if name == FILL else SynthesisParams()  # each mode's measured defaults
    if name == TEXTURE:
        procedure.add_int_argument("width", "_Width", "Width of the new texture in pixels (0: the image's width)",
                                   0, MAX_SIDE, 0, RW)
        procedure.add_int_argument("height", "H_eight",
                                   "Height of the new texture in pixels (0: the image's height)", 0, MAX_SIDE, 0, RW)
        procedure.add_boolean_argument("tileable", "_Tileable", "Make the texture tile seamlessly",
                                       defaults.tileable, RW)
    procedure.add_int_argument("seed", "See_d", "Seed of the random start: same seed, same result",
                               0, G_MAXINT, defaults.seed, RW)
    quality = Gimp.Choice.new()
    for index, (preset, (phases, iterations)) in enumerate(PRESETS.items()):
        quality.add(preset, index, f"{preset.capitalize()} ({phases} scales x {iterations} steps)", "")
    procedure.add_choice_argument("quality", "_Quality", "Quality preset: scales (phases) and steps per scale",
                                  quality, DEFAULT_PRESET, RW)
    # Ranges and help from the schema (esm_contract.schema); phases and iterations 0 = the preset's.
    procedure.add_int_argument("phases", "_Phases (0: from quality)", schema.SCHEDULE["phases"].help,
                               0, int(ui_range(schema.SCHEDULE["phases"])[1]), 0, RW)
    procedure.add_int_argument("iterations", "_Iterations (0: from quality)", schema.SCHEDULE["iterations"].help,
                               0, int(ui_range(schema.SCHEDULE["iterations"])[1]), 0, RW)
    for argument, label, param in (("style-weight", "St_yle weight", schema.STYLE["style_weight"]),
                                   ("variety", "_Variety", schema.TEXTURE["variety"]),
                                   ("smoothness", "S_moothness", schema.STYLE["smoothness"])):
        procedure.add_double_argument(argument, label, param.help, *ui_range(param),
                                      getattr(defaults, param.name), RW)
    if name == FILL:
        procedure.add_int_argument("context", "Conte_xt (px, 0: automatic)",
                                   "Band around the selection whose patches fill it (0: as wide as the "
                                   "selection's longer side, at least 16 px, as in Krita)", 0, 1024, 0, RW)
    # Empty = the installer's choice, read at run time (GIMP caches these defaults in pluginrc).
    procedure.add_string_argument("endpoint", "Daemon e_ndpoint (empty: as installed)",
                                  "ZeroMQ endpoint of the ESM daemon; empty: $ESM_ENDPOINT, else the one "
                                  "chosen at installation",
                                  "", RW)
    procedure.add_boolean_argument("autostart", "Start the daemon _automatically",
                                   "Start an ESM daemon when none answers (as recorded by the installer)", True, RW)
    procedure.add_layer_return_value("new-layer", "New layer", "The layer holding the result", False, RW)


def _params(config):
    """The SynthesisParams fields common to both modes, from the procedure's arguments."""
    preset = preset_fields(config.get_property("quality"))
    return {"seed": config.get_property("seed"),
            "phases": config.get_property("phases") or preset["phases"],
            "iterations": config.get_property("iterations") or preset["iterations"],
            "style_weight": config.get_property("style-weight"),
            "variety": config.get_property("variety"),
            "smoothness": config.get_property("smoothness")}


class _Progress:
    """GIMP's progress bar, fed by the daemon's Progress events."""

    def __init__(self, label):
        self.label = label
        Gimp.progress_init(f"ESM {label}...")

    def status(self, text):
        Gimp.progress_set_text(text)

    def __call__(self, event):
        Gimp.progress_set_text(f"ESM {self.label}: scale {event.phase + 1}/{event.phases}, "
                               f"step {event.step}/{event.steps}")
        Gimp.progress_update(min(max(event.fraction, 0.0), 1.0))


def _read(drawable, rect, channels):
    x, y, w, h = rect
    return drawable.get_buffer().get(Gegl.Rectangle.new(x, y, w, h), 1.0, pixels.FORMATS[channels],
                                     Gegl.AbyssPolicy.CLAMP)


def _channels(image, drawable):
    return pixels.channels_for(image.get_base_type() == Gimp.ImageBaseType.GRAY, drawable.has_alpha())


def _add_layer(image, drawable, name, rect, channels, data):
    """One new layer holding ``data`` at ``rect`` (image coordinates), right above
    ``drawable``, as one undo step; it becomes the selected layer."""
    x, y, w, h = rect
    gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
    image.undo_group_start()
    try:
        layer = Gimp.Layer.new(image, name, w, h, Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE,
                               100.0, Gimp.LayerMode.NORMAL)
        image.insert_layer(layer, drawable.get_parent(), image.get_item_position(drawable))
        layer.set_offsets(x, y)
        buffer = layer.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, w, h), pixels.FORMATS[channels], data)
        buffer.flush()
        layer.update(0, 0, w, h)
        image.set_selected_layers([layer])
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return layer


def texture_from_selection(image, drawable, config):
    """The selection's bounding box within the layer (or the whole layer) is the exemplar."""
    inside, x, y, w, h = drawable.mask_intersect()
    if not inside:
        raise PluginError("the selection does not overlap the active layer")
    channels = _channels(image, drawable)
    exemplar = _read(drawable, (x, y, w, h), channels)
    width = config.get_property("width") or image.get_width()
    height = config.get_property("height") or image.get_height()
    params = dict(_params(config), width=width, height=height, tileable=config.get_property("tileable"))
    progress = _Progress("texture")
    [result] = daemon.run_job("texture", params, {"exemplar": (w, h, channels, exemplar)},
                              config.get_property("endpoint"), config.get_property("autostart"),
                              progress, progress.status)
    return _add_layer(image, drawable, f"ESM texture (seed {params['seed']})", (0, 0, result.width, result.height),
                      result.channels, bytes(result.data))


def fill_selection(image, drawable, config):
    """The selection (thresholded at 50%, within the layer) is the hole; the band around it
    (esm_client.plugin.fill_margin, the same as Krita's) is the source of patches."""
    if Gimp.Selection.is_empty(image):
        raise PluginError("Fill Selection needs a selection: select the region to fill first")
    inside, x, y, w, h = drawable.mask_intersect()
    if not inside:
        raise PluginError("the selection does not overlap the active layer")
    _, ox, oy = drawable.get_offsets()
    context = fill_margin(w, h, config.get_property("context"))
    region = pixels.grow((x, y, w, h), context, (0, 0, drawable.get_width(), drawable.get_height()))
    rx, ry, rw, rh = region
    selection = image.get_selection().get_buffer().get(
        Gegl.Rectangle.new(ox + rx, oy + ry, rw, rh), 1.0, "Y u8", Gegl.AbyssPolicy.NONE)
    mask = pixels.threshold(selection)
    hole = pixels.mask_bounds(mask, rw, rh)
    if hole is None:
        raise PluginError("no pixel of the layer is at least half selected: "
                                 "Fill Selection fills where the selection is 50% or more")
    channels = _channels(image, drawable)
    params = dict(_params(config), context=context, output="layer")
    progress = _Progress("fill")
    [result] = daemon.run_job("fill", params, {"image": (rw, rh, channels, _read(drawable, region, channels)),
                                               "mask": (rw, rh, 1, mask)},
                              config.get_property("endpoint"), config.get_property("autostart"),
                              progress, progress.status)
    if (result.width, result.height) != (rw, rh):
        raise PluginError(f"the daemon returned a {result.width}x{result.height} image for a "
                                 f"{rw}x{rh} region")
    hx, hy, hw, hh = hole
    data = pixels.crop(bytes(result.data), rw, result.channels, hole)
    return _add_layer(image, drawable, f"ESM fill (seed {params['seed']})", (ox + rx + hx, oy + ry + hy, hw, hh),
                      result.channels, data)


ACTIONS = {TEXTURE: texture_from_selection, FILL: fill_selection}
TITLES = {TEXTURE: "ESM Texture from Selection", FILL: "ESM Fill Selection"}


def _failure(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def run(procedure, run_mode, image, drawables, config, data):
    name = procedure.get_name()
    if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
        return _failure(procedure, f"{TITLES[name]} works on one layer: select a single layer")
    if run_mode == Gimp.RunMode.INTERACTIVE:
        GimpUi.init("esm-gimp")
        dialog = GimpUi.ProcedureDialog.new(procedure, config, TITLES[name])
        dialog.fill(None)
        accepted = dialog.run()
        dialog.destroy()
        if not accepted:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        layer = ACTIONS[name](image, drawables[0], config)
    except PluginError as error:
        return _failure(procedure, f"{TITLES[name]}: {error}")
    except Exception as error:  # a bug: the message for the user, the traceback for the terminal
        traceback.print_exc()
        return _failure(procedure, f"{TITLES[name]} failed unexpectedly: {type(error).__name__}: {error}")
    finally:
        Gimp.progress_end()
    values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
    values.remove(1)
    values.insert(1, GObject.Value(Gimp.Layer, layer))
    return values


class EsmPlugIn(Gimp.PlugIn):
    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return [TEXTURE, FILL]

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        if name == TEXTURE:
            procedure.set_menu_label("ESM _Texture from Selection...")
            procedure.add_menu_path("<Image>/Filters/Render")
            procedure.set_documentation(
                "Synthesise a texture from the selection",
                "The selection's bounding box on the active layer (the whole layer without a selection) is "
                "the exemplar; a new layer above it receives a texture of the chosen size.", name)
        else:
            procedure.set_menu_label("ESM _Fill Selection...")
            procedure.add_menu_path("<Image>/Filters/Enhance")
            procedure.set_documentation(
                "Fill the selection from its surroundings",
                "The selected region of the active layer (pixels selected 50% or more) is re-synthesised "
                "from the surrounding band onto a new layer; the layer itself is left unchanged.", name)
        procedure.set_attribution("Extreme Style Machines", "Extreme Style Machines", "2025")
        _add_arguments(procedure, name)
        return procedure


Gimp.main(EsmPlugIn.__gtype__, sys.argv)
