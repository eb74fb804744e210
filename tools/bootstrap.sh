#!/usr/bin/env bash
# Install the Debian 12 system packages icapdlp needs, as root, idempotently.
# Used by the README's two commands and by .ci/run; it installs nothing from
# outside Debian's archive. When every package is already present it returns
# at once without touching apt.
set -euo pipefail

PACKAGES=(
  make                    # the Makefile drives setup, run and test
  python3 python3-venv python3-dev
  tesseract-ocr tesseract-ocr-eng libtesseract5   # burned-in text OCR (libtesseract: the in-process engine)
  fonts-dejavu-core fonts-liberation  # fonts for the synthetic test images
  squid-openssl           # Squid 5.7 built with OpenSSL: ICAPS and ssl_bump work
  c-icap                  # c-icap-client for conformance tests, c-icap for the benchmark
  dicom3tools             # dciodvfy validates rebuilt objects in tests
  qpdf poppler-utils git squashfs-tools  # tests build a PDF attachment, a git pack, a squashfs image and read them back
  prometheus              # promtool checks the alert rules
  unzip                   # Info-ZIP unzip: tests read rebuilt archives as a receiver does
  p7zip-full gcab cabextract  # 7-Zip, a cabinet writer and cabextract: tests show they find archives behind a prefix
  busybox                 # busybox tar: a tar reader that ignores pax size records (tests)
  squashfs-tools          # mksquashfs/unsquashfs: tests show a squashfs image is refused
  dcmtk                   # dcm2xml/dcmdump and xml2dcm/dump2dcm: DCMTK's text forms of an object (tests)
  prometheus-alertmanager # amtool checks the compose Alertmanager config (the daemon is not used)
  curl openssl ca-certificates
  gnupg                   # gpg: tests show an encrypted file is refused
  binutils                # objcopy: tests write a file as Intel HEX and S-records and read it back
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "bootstrap: installing ${missing[*]}" >&2
# Package installs must not start daemons that would hold the test ports.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
trap '[ "$created_policy" = 1 ] && $SUDO rm -f "$policy"' EXIT
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
