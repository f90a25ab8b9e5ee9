"""Presses a key in an X window found by its title: `python3 x11_press.py DISPLAY TITLE KEY`.
Stands in for the user in the GIMP GUI test (no window manager, no xdotool in the root):
gives the window the input focus and presses the key through XTest (GTK 3 reads input
through XInput2, so synthetic XSendEvent keys would be ignored). libX11 + libXtst via
ctypes. Exit status 1 when no window has that title (yet), 2 when the display cannot be opened
(it may have closed)."""
import ctypes
import sys

X11 = ctypes.CDLL("libX11.so.6")
XTEST = ctypes.CDLL("libXtst.so.6")
V, UL = ctypes.c_void_p, ctypes.c_ulong
REVERT_TO_PARENT = 2

X11.XOpenDisplay.restype = V
X11.XOpenDisplay.argtypes = [ctypes.c_char_p]
X11.XDefaultRootWindow.restype = UL
X11.XDefaultRootWindow.argtypes = [V]
X11.XQueryTree.argtypes = [V, UL, ctypes.POINTER(UL), ctypes.POINTER(UL), ctypes.POINTER(ctypes.POINTER(UL)),
                           ctypes.POINTER(ctypes.c_uint)]
X11.XFetchName.argtypes = [V, UL, ctypes.POINTER(ctypes.c_char_p)]
X11.XSetInputFocus.argtypes = [V, UL, ctypes.c_int, UL]
X11.XStringToKeysym.restype = UL
X11.XStringToKeysym.argtypes = [ctypes.c_char_p]
X11.XKeysymToKeycode.argtypes = [V, UL]
X11.XSync.argtypes = [V, ctypes.c_int]
XTEST.XTestFakeKeyEvent.argtypes = [V, ctypes.c_uint, ctypes.c_int, UL]


def find_window(display: int, title: str) -> int | None:
    root, parent, count = UL(), UL(), ctypes.c_uint()
    children = ctypes.POINTER(UL)()
    X11.XQueryTree(display, X11.XDefaultRootWindow(display), ctypes.byref(root), ctypes.byref(parent),
                   ctypes.byref(children), ctypes.byref(count))
    for window in (children[i] for i in range(count.value)):
        name = ctypes.c_char_p()
        if X11.XFetchName(display, window, ctypes.byref(name)) and name.value == title.encode():
            return window
    return None


def main(display_name: str, title: str, key: str) -> int:
    display = X11.XOpenDisplay(display_name.encode())
    if not display:
        return 2
    window = find_window(display, title)
    if window is None:
        return 1
    X11.XSetInputFocus(display, window, REVERT_TO_PARENT, 0)
    X11.XSync(display, 0)
    keycode = X11.XKeysymToKeycode(display, X11.XStringToKeysym(key.encode()))
    for pressed in (1, 0):
        XTEST.XTestFakeKeyEvent(display, keycode, pressed, 0)
    X11.XSync(display, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
