"""Small file helpers on LittleFS for the updater and sync: an atomic replace (write a .tmp,
then one rename, which LittleFS commits atomically), reads that answer None for a missing file,
and tree walks without recursion limits beyond the slot's depth."""

import os


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def replace(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return None


def mkdir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass


def mkdirs(top, name):
    parts = name.split("/")[:-1]
    d = top
    for p in parts:
        d = d + "/" + p
        mkdir(d)


def walk(top):
    out = []
    try:
        entries = list(os.ilistdir(top))
    except OSError:
        return out
    for e in entries:
        path = top + "/" + e[0]
        if e[1] == 0x4000:
            out.extend(walk(path))
        else:
            out.append(path)
    return out


def rmtree(top):
    try:
        entries = list(os.ilistdir(top))
    except OSError:
        return
    for e in entries:
        path = top + "/" + e[0]
        if e[1] == 0x4000:
            rmtree(path)
            os.rmdir(path)
        else:
            os.remove(path)
