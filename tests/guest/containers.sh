# Sourced by /tests/run-tests.sh: container metadata from a real runtime,
# live on the module. The guest starts the host's containerd (put in the
# initramfs by scripts/lab/containers.sh), imports a busybox image made on
# the host, and runs a container whose process reads /etc/shadow. Its alert
# must name the container as containerd itself does (`ctr containers info`,
# `ctr task ls`). Then containerd is killed: a runtime that dies must cost
# peregrine nothing, so the container's next read and a host trigger must
# still alert, and peregrine must still be running.
#
# Adds to run-tests.sh's counters with the same "PGTEST ok|FAIL" lines; a
# guest without the runtime says why in one PGTEST-SKIP line.

CT=/tmp/ctr                         # containerd's root, state, socket; logs
CT_SOCK=$CT/containerd.sock
CT_IO=$CT/io                        # bind-mounted into the container: go files
CT_ALERTS=$CT/alerts.json
CT_OUT=$CT/peregrine.out
CT_LOG=$CT/containerd.log
# A 64-digit id, as runtimes name containers: the one shape peregrine reads
# out of a cgroup path as a container's.
CT_ID=c7d2f00d$(printf '%056d' 0 | tr 0 7)

ct_ok() { pass=$((pass + 1)); echo "PGTEST ok containers: $1"; }
ct_fail() {
    fail=$((fail + 1)); echo "PGTEST FAIL containers: $1"
    shift
    for line in "$@"; do echo "    $line"; done
}
ct_skip() { echo "PGTEST-SKIP containers: $1"; }

ctr_() { ctr --address $CT_SOCK "$@"; }

# ct_wait SECONDS COMMAND...: polls until COMMAND succeeds. Emulation makes
# every step slow and uneven, so the bounds are generous; they only matter
# when something is broken.
ct_wait() {
    ct_n=$(($1 * 10)); shift
    until "$@"; do
        [ $ct_n -le 0 ] && return 1
        usleep 100000; ct_n=$((ct_n - 1))
    done
}

# Alert lines of one rule.
ct_alerts_of() { grep -F "\"rule\":\"$1\"" $CT_ALERTS 2>/dev/null; }

# Whether an alert of rule $1 holds text $2.
ct_has() { ct_alerts_of "$1" | grep -qF "$2"; }

# Seconds since the section started, for the log.
ct_since() { awk -v s=$ct_start '{print $1 - s}' /proc/uptime; }

# The value of output field $1 in alert line $2 ("" when absent); numbers
# (proc.ppid) come unquoted.
ct_field() { echo "$2" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }

# What ctr printed for key $1 in `ctr containers info` (pretty JSON, one
# key a line; labels are keys too).
ct_info() { sed -n "s/^ *\"$1\": \"\([^\"]*\)\",\{0,1\}$/\1/p" $CT/info.json | head -n 1; }

ct_rules() {
    cat > $CT/rules.yaml <<'EOF'
- rule: Guest Container Reads Shadow
  desc: a process in a container opens /etc/shadow
  condition: evt.type in (open, openat, openat2) and fd.name = /etc/shadow and container.id != host
  output: >
    shadow read in a container (id=%container.id full_id=%container.full_id
    name=%container.name type=%container.type image=%container.image
    repository=%container.image.repository tag=%container.image.tag
    pod=%k8s.pod.name ns=%k8s.ns.name ppid=%proc.ppid args=%proc.args)
  priority: WARNING
- rule: Guest Container Started
  desc: the container event, once the runtime has answered
  condition: evt.type = container
  output: container started (id=%container.id name=%container.name)
  priority: INFO
- rule: Guest Host Marker Read
  desc: the host side's markers, to know the reader got this far
  condition: evt.type in (open, openat, openat2) and fd.name startswith /tmp/ctr/marker and container.id = host
  output: host marker read (file=%fd.name)
  priority: INFO
EOF
    # The container plugin's init_config, as Falco's plugin reads it: only
    # containerd, at the guest's socket.
    cat > $CT/falco.yaml <<EOF
json_output: true
json_include_output_property: true
plugins:
  - name: container
    init_config:
      engines:
        docker: {enabled: false}
        podman: {enabled: false}
        cri: {enabled: false}
        containerd: {enabled: true, sockets: ['$CT_SOCK']}
EOF
}

# Starts containerd on tmpfs folders with only the plugins ctr needs here;
# the native snapshotter copies layers, so no overlay module is needed.
ct_containerd_start() {
    cat > $CT/containerd.toml <<EOF
version = 2
root = "$CT/root"
state = "$CT/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.overlayfs"]
[grpc]
  address = "$CT_SOCK"
EOF
    containerd --config $CT/containerd.toml > $CT_LOG 2>&1 &
    CT_PID=$!
    # ctr would wait ~10 s for a socket that is not there yet.
    ct_wait 30 ct_settled sh -c "[ -S $CT_SOCK ] && ctr --address $CT_SOCK version"
    ct_alive $CT_PID && ctr_ version > /dev/null 2>&1
}

# Done waiting: COMMAND succeeds, or containerd or peregrine (whichever was
# started last) has exited, which no wait can mend.
ct_settled() {
    ! ct_alive ${CT_PEREGRINE:-$CT_PID} || "$@" > /dev/null 2>&1
}

# Whether process $1 runs: an exited child stays a zombie, which kill -0
# still finds, until the shell happens to reap it.
ct_alive() { [ -n "$1" ] && grep -q '^[0-9]* ([^)]*) [^Z]' /proc/$1/stat 2>/dev/null; }

# Settled once a read of the ready marker comes back as an alert.
ct_peregrine_start() {
    peregrine -c $CT/falco.yaml -r $CT/rules.yaml -U -o stdout_output.enabled=false \
        -o file_output.enabled=true -o file_output.filename=$CT_ALERTS > $CT_OUT 2>&1 &
    CT_PEREGRINE=$!
    ct_wait 60 ct_settled sh -c "cat $CT/marker-ready; grep -q marker-ready $CT_ALERTS"
    grep -q marker-ready $CT_ALERTS 2>/dev/null
}

# Stops what this section started, whatever got started: peregrine, then
# containerd and the container. Without containerd nothing can stop the
# task but a signal: its process, then its shim (the task's parent).
ct_stop() {
    if ct_alive "$CT_PEREGRINE"; then
        kill -TERM $CT_PEREGRINE; wait $CT_PEREGRINE
    fi
    kill -9 $CT_PID 2>/dev/null
    if [ -n "$CT_TASK" ]; then
        ct_shim=$(awk '{print $4}' /proc/$CT_TASK/stat 2>/dev/null)
        kill -9 $CT_TASK $ct_shim 2>/dev/null
    fi
}

# Compares one field of the container's first alert with the runtime's word.
ct_expect() {
    got=$(ct_field "$1" "$CT_ALERT")
    if [ -n "$2" ] && [ "$got" = "$2" ]; then
        ct_ok "alert $1 = $2, as $3 says"
    else
        ct_fail "alert $1 = '$2', as $3 says" "the alert has '$got'"
    fi
}

ct_main() {
    if [ ! -x /bin/containerd ]; then
        ct_skip "$(cat /containers-unavailable 2>/dev/null || echo 'no containerd in this guest')"
        return
    fi
    [ -x /bin/peregrine ] || { ct_skip "no static peregrine in this guest"; return; }
    mkdir -p $CT/root $CT/state $CT_IO /etc
    # A host-network container gets the host's /etc/hosts and resolv.conf
    # bind-mounted in: runc fails when the guest has none.
    [ -e /etc/hosts ] || echo '127.0.0.1 localhost' > /etc/hosts
    [ -e /etc/resolv.conf ] || : > /etc/resolv.conf
    : > $CT/marker-ready; : > $CT/marker-after-kill
    # runc places the container in a cgroup of its own (cgroup2: the path
    # peregrine reads the id from); the rules' run may have mounted it.
    grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts ||
        { mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup; }
    # The page allocator's cgroup static keys (cpuset, memcg) are patched in
    # when the first cgroup with those controllers comes online. Twice on
    # 6.12, the vCPU running runc met the patch's int3 after it was gone
    # (an Oops in __alloc_pages while runc made the first container cgroup),
    # which looks like QEMU's software emulation of cross-modified code. A
    # cgroup made here, on a quiet guest before the module loads, takes that
    # patching early and keeps the keys on until the guest powers off.
    echo "+cpuset +memory" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
    mkdir -p /sys/fs/cgroup/pg-keys-on
    ct_start=$(cut -d' ' -f1 /proc/uptime)
    CT_PEREGRINE= CT_TASK=
    if ! ct_containerd_start; then
        ct_skip "containerd does not start in the guest: $(grep -v '^$' $CT_LOG | tail -n 1 | cut -c1-200)"
        ct_stop
        return
    fi
    echo "containers: containerd answers after $(ct_since) s"
    if ctr_ images import --snapshotter native /tests/containers/image.tar > $CT/import.out 2>&1; then
        ct_ok "ctr imports the busybox image made on the host"
    else
        ct_fail "ctr imports the busybox image made on the host" "$(tail -n 3 $CT/import.out)"
        ct_stop; return
    fi
    ct_rules
    if ! insmod /peregrine.ko; then
        ct_fail "insmod"; ct_stop; return
    fi
    if ct_peregrine_start; then
        ct_ok "peregrine live start with the containerd engine"
    else
        ct_fail "peregrine live start with the containerd engine" "$(tail -n 10 $CT_OUT)"
        ct_stop; rmmod peregrine; return
    fi
    # The container reads /etc/shadow only once told to, after peregrine has
    # its metadata (the lookup is asynchronous: a read before it would show
    # empty fields, as Falco's would), and again once containerd is gone.
    # --no-pivot: the guest's root is the initramfs, which pivot_root refuses.
    if ctr_ run -d --snapshotter native --net-host --no-pivot \
        --label io.kubernetes.pod.name=web-0 --label io.kubernetes.pod.namespace=shop \
        --mount type=bind,src=$CT_IO,dst=/io,options=rbind:rw \
        "$(cat /tests/containers/image-name)" $CT_ID \
        sh -c 'until [ -e /io/go1 ]; do usleep 50000; done; cat /etc/shadow > /dev/null
               until [ -e /io/go2 ]; do usleep 50000; done; cat /etc/shadow /etc/group > /dev/null
               exec sleep 600' > $CT/run.out 2>&1; then
        ct_ok "ctr runs a container (native snapshotter, host network)"
    else
        ct_fail "ctr runs a container (native snapshotter, host network)" "$(tail -n 3 $CT/run.out)"
        ct_stop; rmmod peregrine; return
    fi
    ctr_ containers info $CT_ID > $CT/info.json 2>&1
    CT_TASK=$(ctr_ task ls 2>/dev/null | awk -v id=$CT_ID '$1 == id {print $2}')
    echo "containers: task pid ${CT_TASK:-?} after $(ct_since) s"

    short=$(echo $CT_ID | cut -c1-12)
    if ct_wait 30 ct_has "Guest Container Started" "id=$short"; then
        ct_ok "a container event once containerd has answered"
    else
        ct_fail "a container event once containerd has answered" "$(grep container $CT_OUT | tail -n 3)"
    fi
    : > $CT_IO/go1
    if ct_wait 30 ct_has "Guest Container Reads Shadow" "args=/etc/shadow)"; then
        CT_ALERT=$(ct_alerts_of "Guest Container Reads Shadow" | grep -F "args=/etc/shadow)" | head -n 1)
        image=$(ct_info Image)
        ct_expect container.id "$(ct_info ID | cut -c1-12)" "ctr containers info"
        ct_expect container.full_id "$(ct_info ID)" "ctr containers info"
        # containerd has no names: the container plugin shows the short id.
        ct_expect container.name "$(ct_info ID | cut -c1-12)" "ctr containers info (no name: the short id)"
        ct_expect container.type containerd "the engine that answered"
        ct_expect container.image "$image" "ctr containers info"
        ct_expect container.image.repository "${image%:*}" "ctr containers info's image"
        ct_expect container.image.tag "${image##*:}" "ctr containers info's image"
        ct_expect k8s.pod.name "$(ct_info io.kubernetes.pod.name)" "ctr containers info's labels"
        ct_expect k8s.ns.name "$(ct_info io.kubernetes.pod.namespace)" "ctr containers info's labels"
        ct_expect proc.ppid "$CT_TASK" "ctr task ls (the reader's parent is the task)"
    else
        ct_fail "the container's read of /etc/shadow alerts" "$(tail -n 3 $CT_OUT)"
    fi
    started=$(ct_alerts_of "Guest Container Started" | wc -l)
    [ "$started" = 1 ] && ct_ok "exactly one container event" ||
        ct_fail "exactly one container event" "$started of them"

    # containerd dies as a crash would; its shim keeps the task running.
    kill -9 $CT_PID; wait $CT_PID 2>/dev/null
    : > $CT_IO/go2
    if ct_wait 30 ct_has "Guest Container Reads Shadow" "args=/etc/shadow /etc/group)"; then
        # What containerd said before it died is kept.
        CT_ALERT=$(ct_alerts_of "Guest Container Reads Shadow" | grep -F "args=/etc/shadow /etc/group)" | head -n 1)
        got="$(ct_field container.id "$CT_ALERT") $(ct_field container.image "$CT_ALERT")"
        if [ "$got" = "$short $image" ]; then
            ct_ok "after containerd is killed, a read in the container alerts with its id and image"
        else
            ct_fail "after containerd is killed, a read in the container alerts with its id and image" \
                "the alert has '$got', containerd said '$short $image'"
        fi
    else
        ct_fail "after containerd is killed, a read in the container alerts with its id and image" \
            "no alert; $(tail -n 3 $CT_OUT)"
    fi
    if ct_wait 30 sh -c "cat $CT/marker-after-kill > /dev/null; grep -q marker-after-kill $CT_ALERTS"; then
        ct_ok "after containerd is killed, a host trigger alerts"
    else
        ct_fail "after containerd is killed, a host trigger alerts" "$(tail -n 5 $CT_OUT)"
    fi
    if ct_alive $CT_PEREGRINE; then
        ct_ok "after containerd is killed, peregrine is still running"
    else
        ct_fail "after containerd is killed, peregrine is still running" "$(tail -n 10 $CT_OUT)"
    fi
    echo "containers: done after $(ct_since) s"
    ct_stop
    check "containers: rmmod" rmmod peregrine
}

ct_main
