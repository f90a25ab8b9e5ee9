"""The plug-in's one error type: a message for the user, shown in the docker and the canvas."""


class PluginError(Exception):
    pass
