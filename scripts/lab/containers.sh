# Sourced by scripts/lab/guest.sh: a real container runtime for the guest
# (tests/guest/containers.sh). The host's own containerd, ctr, runc and
# runc shim go in with the shared libraries they link, next to an image
# made here from a busybox rootfs, since nothing can be pulled from a
# registry. Expects REPO, WORK and the guest root at $WORK/guest-root.
#
# All of it goes into a second, uncompressed cpio archive that lab_initrd
# appends to the gzip one: ~90 MB of Go binaries cost the emulated kernel
# ~3 s to gunzip at every boot, and ~1 s to copy as they are.

LAB_CONTAINER_PROGRAMS=(containerd ctr runc containerd-shim-runc-v2)
# The image the guest imports and runs; its repository and tag are what the
# alert must show.
LAB_CONTAINER_IMAGE=docker.io/peregrine-test/busybox:1.0

# Writes $WORK/containers.cpio, or $WORK/guest-root/containers-unavailable
# with the one-line reason the guest prints when it skips. Returns 0 either
# way: a missing runtime is a skip, not a failure of the lab.
lab_containers_prepare() {
    local dir=$WORK/containers root p path lib
    rm -rf "$dir" "$WORK/containers.cpio" "$WORK/guest-root/containers-unavailable"
    for p in "${LAB_CONTAINER_PROGRAMS[@]}"; do
        command -v "$p" > /dev/null || {
            echo "$p is not installed on the host (Debian packages containerd, runc)" > "$WORK/guest-root/containers-unavailable"
            return 0
        }
    done
    root=$dir/root
    mkdir -p "$root/bin" "$root/tests/containers"
    for p in "${LAB_CONTAINER_PROGRAMS[@]}"; do
        path=$(command -v "$p")
        cp "$path" "$root/bin/"
        # The guest has no libraries of its own: take each one the loader
        # would map, at the path the binary asks for it (ld.so included).
        for lib in $(ldd "$path" | grep -o '/[^ ]*'); do
            [ -e "$root$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
        done
    done
    lab_containers_image "$dir" "$root/tests/containers/image.tar" || {
        echo "the busybox image for the container could not be made on the host" > "$WORK/guest-root/containers-unavailable"
        return 0
    }
    echo "$LAB_CONTAINER_IMAGE" > "$root/tests/containers/image-name"
    (cd "$root" && find . | cpio -o -H newc --quiet) > "$WORK/containers.cpio"
}

# An OCI image layout archive (what `ctr images import` reads) of a rootfs
# holding the static busybox and an /etc/shadow to read. One uncompressed
# layer; fixed times and owners, so the same inputs give the same digests.
lab_containers_image() {
    local dir=$1 out=$2 rootfs=$1/rootfs layout=$1/layout blobs=$1/layout/blobs/sha256 a
    local layer layer_size config config_size manifest manifest_size
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$blobs" || return 1
    cp /bin/busybox "$rootfs/bin/busybox" || return 1
    for a in sh cat sleep usleep true test; do ln -s busybox "$rootfs/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
    echo 'root:x:0:' > "$rootfs/etc/group"
    echo 'root:*:19000:0:99999:7:::' > "$rootfs/etc/shadow"
    lab_containers_tar "$rootfs" "$dir/layer.tar" || return 1
    read -r layer layer_size < <(lab_containers_blob "$blobs" "$dir/layer.tar") || return 1
    printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$layer" > "$dir/config.json"
    read -r config config_size < <(lab_containers_blob "$blobs" "$dir/config.json") || return 1
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
        "$config" "$config_size" "$layer" "$layer_size" > "$dir/manifest.json"
    read -r manifest manifest_size < <(lab_containers_blob "$blobs" "$dir/manifest.json") || return 1
    # The image's name travels in the index's annotation, as containerd's
    # own export writes it.
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s"}}]}' \
        "$manifest" "$manifest_size" "$LAB_CONTAINER_IMAGE" > "$layout/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
    lab_containers_tar "$layout" "$out"
}

# Fixed times and owners, so that a rebuild gives the same digests.
lab_containers_tar() {
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf "$2" .
}

# Stores file $2 in blob folder $1 under its sha256; prints "DIGEST SIZE".
lab_containers_blob() {
    local d
    d=$(sha256sum "$2" | cut -d' ' -f1) || return 1
    cp "$2" "$1/$d" && echo "$d $(stat -c %s "$2")"
}
