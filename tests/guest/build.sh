#!/usr/bin/env bash
# Build the small "vmtest" guest used by the integration tests (SPEC §10):
# a Debian kernel + busybox/dropbear initramfs, packaged as a LinuxKit
# kernel triplet, an isolinux ISO and a syslinux FAT disk (raw/qcow2/vmdk).
# A variant, "vmtest-agent" (kernel triplet only), has the QEMU Guest Agent
# (Debian's qemu-ga and its libraries) and no SSH server at all.
#
#   tests/guest/build.sh [OUTDIR]      (default: <repo>/.cache/guest)
#
# Progress goes to stderr; the last stdout line is the output directory.
set -euo pipefail
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/.cache/guest}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# No "quiet": kernel messages on the serial log help when a boot fails in CI.
cmdline="console=ttyS0 panic=-1"
# Bus drivers and leaves only; their depends= are resolved from the modules.
# vfat + nls: tests mount the FAT boot disk (Debian's default iocharset is
# ascii, so nls_ascii is needed too).
# crct10dif_generic is a softdep of crc-t10dif, so depends= does not list it.
modules=(virtio_pci virtio_net 9pnet_virtio 9p virtio_blk vfat nls_cp437 nls_ascii
	ata_piix crct10dif_generic sd_mod button evdev)
outputs=(vmtest-kernel vmtest-initrd.img vmtest-cmdline vmtest.iso
	vmtest.raw vmtest.qcow2 vmtest.vmdk id_ed25519 id_ed25519.pub
	vmtest-agent-kernel vmtest-agent-initrd.img vmtest-agent-cmdline)
# The agent variant also needs virtio-serial (its port is /dev/vportNpM).
agent_modules=(virtio_console)
# qemu-ga and the libraries it links that a Debian host may not have.
agent_debs=(qemu-guest-agent libglib2.0-0 libnuma1 liburing2 libudev1 libpcre2-8-0)

log() { echo "guest: $*" >&2; }
die() { echo "guest: error: $*" >&2; exit 1; }

# --- cache check -----------------------------------------------------------
stamp=$(cat "$here/build.sh" "$here/init" "$here/host-packages.txt" |
	sha256sum | cut -d' ' -f1)
cached=1
for f in "${outputs[@]}" .stamp; do [[ -e $out/$f ]] || cached=0; done
if ((cached)) && [[ $(<"$out/.stamp") == "$stamp" ]]; then
	echo "$out"
	exit 0
fi
rm -f "$out/.stamp"

# --- host tools --------------------------------------------------------------
missing=()
need() { # need PACKAGE COMMAND|/ABS/PATH...
	local pkg=$1 t
	shift
	for t; do
		if [[ $t == /* ]]; then [[ -e $t ]]; else command -v "$t" >/dev/null; fi ||
			{ missing+=("$pkg"); return 0; }
	done
}
need qemu-utils qemu-img
need xorriso xorriso
need isolinux /usr/lib/ISOLINUX/isolinux.bin
need syslinux syslinux
need syslinux-common /usr/lib/syslinux/modules/bios/ldlinux.c32
need mtools mcopy
need dosfstools mkfs.fat
need cpio cpio
need openssh-client ssh-keygen
need binutils strings
need busybox-static /bin/busybox
# A dynamic busybox would need its libc in the initramfs too.
if [[ -e /bin/busybox ]] && ldd /bin/busybox >/dev/null 2>&1; then
	missing+=(busybox-static)
fi
for t in apt-get apt-cache dpkg-deb ldd gzip sha256sum; do
	command -v "$t" >/dev/null || die "$t not found: this script needs a Debian host"
done
if ((${#missing[@]})); then
	die "missing host packages, run: apt-get install -y ${missing[*]}" \
		"(full list: tests/guest/host-packages.txt)"
fi

work=$(mktemp -d "$out/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- downloads (cached in $out/debs) -----------------------------------------
debs=$out/debs
mkdir -p "$debs"
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }') || true
if [[ -z $kpkg ]]; then # no apt lists: fall back to a cached kernel package
	kdeb=$(find "$debs" -name 'linux-image-[0-9]*.deb' | sort -V | tail -n1)
	[[ -n $kdeb ]] || die "cannot resolve linux-image-amd64 (run apt-get update)"
	kpkg=$(basename "$kdeb" | cut -d_ -f1)
fi
deb_files=()
for p in "$kpkg" dropbear-bin libtomcrypt1 libtommath1 "${agent_debs[@]}"; do
	if ! compgen -G "$debs/${p}_*.deb" >/dev/null; then
		log "downloading $p"
		(cd "$debs" && apt-get -q download "$p" >&2) || die "apt-get download $p failed"
	fi
	deb_files+=("$(find "$debs" -name "${p}_*.deb" | sort -V | tail -n1)")
done
x=$work/x
for d in "${deb_files[@]}"; do
	log "unpacking $(basename "$d")"
	dpkg-deb -x "$d" "$x"
done

# --- initramfs -----------------------------------------------------------------
kver=$(basename "$(find "$x/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)")
moddir=$x/lib/modules/$kver
[[ -f $x/boot/vmlinuz-$kver ]] || die "no vmlinuz-$kver in $kpkg"

root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/dropbear,etc/acpi/PWRF,proc,sys,dev} \
	"$root"/{tmp,mnt,www,lib/modules,lib/x86_64-linux-gnu,lib64,var/run,var/log}
chmod 0755 "$root"
mkdir -m 0700 "$root/root" "$root/root/.ssh"

# Modules: no modules.dep is shipped, so walk each module's depends= and
# emit dependencies first (names use '-' and '_' interchangeably).
declare -A modpath=() seen=()
while IFS= read -r -d '' f; do
	n=${f##*/}
	n=${n%.ko}
	modpath[${n//-/_}]=$f
done < <(find "$moddir/kernel" -name '*.ko' -print0)
((${#modpath[@]})) || die "no uncompressed .ko modules in $kpkg"
order=()
addmod() {
	local n=${1//-/_} dep
	[[ -z ${seen[$n]:-} ]] || return 0
	seen[$n]=1
	if [[ -z ${modpath[$n]:-} ]]; then
		grep -q "/$n\.ko$" < <(tr - _ <"$moddir/modules.builtin") && return 0
		die "kernel module $1 not found in $kpkg"
	fi
	for dep in $(strings "${modpath[$n]}" | sed -n 's/^depends=//p' | tr , ' '); do
		addmod "$dep"
	done
	order+=("$n")
}
for m in "${modules[@]}"; do addmod "$m"; done
for n in "${order[@]}"; do
	cp "${modpath[$n]}" "$root/lib/modules/$n.ko"
done
printf '%s\n' "${order[@]}" >"$root/lib/modules/load-order"
log "modules: ${order[*]}"

# busybox and its applet links, made here so ssh commands find them at once.
cp /bin/busybox "$root/bin/busybox"
while read -r a; do
	[[ -e $root/$a || -L $root/$a ]] || ln -s /bin/busybox "$root/$a"
done < <(/bin/busybox --list-full)

# A binary plus exactly the libraries ldd lists; all go to one directory the
# loader searches by default, since there is no ld.so.cache.
install_bin() { # install_bin SRC DEST ROOT
	local src=$1 dest=$2 r=$3 lddout lib loader
	cp "$src" "$r/$dest"
	lddout=$(LD_LIBRARY_PATH=$x/usr/lib/x86_64-linux-gnu:$x/lib/x86_64-linux-gnu ldd "$src")
	if grep -q 'not found' <<<"$lddout"; then
		die "$(basename "$src") libraries missing on host: $(grep 'not found' <<<"$lddout" | tr -s ' \t\n' ' ')" \
			"(install: $(tr '\n' ' ' <"$here/host-packages.txt"))"
	fi
	while read -r lib; do
		cp -L "$lib" "$r/lib/x86_64-linux-gnu/$(basename "$lib")"
	done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$lddout")
	loader=$(awk '$1 ~ /^\/.*ld-linux/ { print $1 }' <<<"$lddout")
	[[ -n $loader ]] || die "no dynamic loader in ldd output for $src"
	mkdir -p "$r/$(dirname "$loader")"
	cp -L "$loader" "$r/$loader"
}

echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
# '*' rather than '!': dropbear refuses accounts it considers locked.
echo 'root:*:19000:0:99999:7:::' >"$root/etc/shadow"
chmod 0600 "$root/etc/shadow"
echo 'root:x:0:' >"$root/etc/group"
echo '/bin/sh' >"$root/etc/shells"
printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' >"$root/etc/nsswitch.conf"
echo vmtest >"$root/etc/hostname"
echo vmtest-http-ok >"$root/www/index.html"
# busybox acpid maps the power button to /etc/acpi/PWRF/00000080.
printf '#!/bin/sh\npoweroff -f\n' >"$root/etc/acpi/PWRF/00000080"
chmod 0755 "$root/etc/acpi/PWRF/00000080"
install -m 0755 "$here/init" "$root/init"

# The agent variant shares everything so far; it gets no dropbear and no key.
aroot=$work/agent-root
cp -a "$root" "$aroot"

install_bin "$x/usr/sbin/dropbear" usr/sbin/dropbear "$root"
# scp (the host's, from openssh-client; it needs only libc) so that `cp`
# can be measured against `scp -O`: dropbear runs `scp -t|-f` for it.
install_bin /usr/bin/scp usr/bin/scp "$root"
# Test key pair: kept across rebuilds so a regenerated guest accepts old keys.
if [[ ! -f $out/id_ed25519 || ! -f $out/id_ed25519.pub ]]; then
	rm -f "$out/id_ed25519" "$out/id_ed25519.pub"
	ssh-keygen -q -t ed25519 -N '' -C vmtest -f "$out/id_ed25519"
fi
chmod 0600 "$out/id_ed25519"
install -m 0600 "$out/id_ed25519.pub" "$root/root/.ssh/authorized_keys"

(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
	gzip -9 >"$work/vmtest-initrd.img"
cp "$x/boot/vmlinuz-$kver" "$work/vmtest-kernel"
echo "$cmdline" >"$work/vmtest-cmdline"

# --- agent variant -------------------------------------------------------------
# qemu-ga on the virtio-serial port (virtio_console), no SSH server. /init
# starts it when /usr/sbin/qemu-ga exists. guest-shutdown runs
# /sbin/shutdown, which busybox lacks: a wrapper powers off.
rm -rf "$aroot/etc/dropbear" "$aroot/root/.ssh"
aorder=()
for m in "${agent_modules[@]}"; do
	n=${m//-/_}
	[[ -n ${modpath[$n]:-} ]] || die "kernel module $m not found in $kpkg"
	for dep in $(strings "${modpath[$n]}" | sed -n 's/^depends=//p' | tr , ' '); do
		[[ -n ${seen[${dep//-/_}]:-} ]] || die "module $m needs $dep, which the SSH guest does not load"
	done
	cp "${modpath[$n]}" "$aroot/lib/modules/$n.ko"
	aorder+=("$n")
done
printf '%s\n' "${order[@]}" "${aorder[@]}" >"$aroot/lib/modules/load-order"
install_bin "$x/usr/sbin/qemu-ga" usr/sbin/qemu-ga "$aroot"
printf '#!/bin/sh\n# qemu-ga guest-shutdown runs "shutdown -P|-H|-r +0 MSG".\ncase "$1" in -r) exec reboot -f ;; -H) exec halt -f ;; *) exec poweroff -f ;; esac\n' \
	>"$aroot/sbin/shutdown"
chmod 0755 "$aroot/sbin/shutdown"
echo vmtest-agent >"$aroot/etc/hostname"
(cd "$aroot" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
	gzip -9 >"$work/vmtest-agent-initrd.img"
cp "$x/boot/vmlinuz-$kver" "$work/vmtest-agent-kernel"
echo "$cmdline" >"$work/vmtest-agent-cmdline"

# --- bootable images -------------------------------------------------------------
# No menu, no wait: the bootloader must not delay an unattended boot.
bootcfg() {
	printf '%s\n' 'serial 0 115200' 'prompt 0' 'timeout 1' 'default vmtest' \
		'label vmtest' '  kernel /vmlinuz' '  initrd /initrd.img' "  append $cmdline"
}

iso=$work/iso
mkdir -p "$iso/isolinux"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
bootcfg >"$iso/isolinux/isolinux.cfg"
cp "$work/vmtest-kernel" "$iso/vmlinuz"
cp "$work/vmtest-initrd.img" "$iso/initrd.img"
xorriso -as mkisofs -o "$work/vmtest.iso" -V VMTEST -R -J \
	-b isolinux/isolinux.bin -c isolinux/boot.cat \
	-no-emul-boot -boot-load-size 4 -boot-info-table "$iso" >"$work/xorriso.log" 2>&1 ||
	{ cat "$work/xorriso.log" >&2; die "xorriso failed"; }

# A superfloppy: the FAT boot sector that syslinux writes is what the BIOS
# boots, so no partition table or MBR is needed.
raw=$work/vmtest.raw
size_mb=$((($(stat -c %s "$work/vmtest-kernel") + $(stat -c %s "$work/vmtest-initrd.img")) / 1048576 + 8))
truncate -s "${size_mb}M" "$raw"
mkfs.fat -n VMTEST "$raw" >/dev/null
syslinux --install "$raw"
bootcfg >"$work/syslinux.cfg"
mcopy -i "$raw" "$work/syslinux.cfg" ::syslinux.cfg
mcopy -i "$raw" "$work/vmtest-kernel" ::vmlinuz
mcopy -i "$raw" "$work/vmtest-initrd.img" ::initrd.img
qemu-img convert -f raw -O qcow2 "$raw" "$work/vmtest.qcow2"
qemu-img convert -f raw -O vmdk "$raw" "$work/vmtest.vmdk"

for f in "${outputs[@]}"; do
	[[ $f == id_ed25519* ]] || mv -f "$work/$f" "$out/$f"
done
echo "$stamp" >"$out/.stamp"
log "built from $kpkg ($kver)"
echo "$out"
