package vmcontainer

/*
#include <stdint.h>
#include <stdlib.h>
#include <vmcontainer.h>

extern vmc_error_code_t vmc_go_install(const vmc_devenv_t *d, uintptr_t handle,
	vmc_devenv_install_report_t **report, vmc_error_t **err);
extern vmc_error_code_t vmc_go_update(const vmc_devenv_t *d, uintptr_t handle,
	vmc_devenv_install_report_t **report, vmc_error_t **err);
*/
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
	"runtime/cgo"
	"time"
)

// DevContainerName is the name of the dev environment's container.
const DevContainerName = "core-dev"

// DevOps is the portable development environment of one home directory:
// the core-devops image (download, updates) and the VM named core-dev that
// boots it with a project at /app. Configured by HOME/config.yaml, as for
// `vmcontainer dev`. Safe for concurrent use; Close it when done (the VM
// keeps running).
type DevOps struct {
	ptr *C.vmc_devenv_t
}

// NewDevOps opens the dev environment of home ("" means $VMCONTAINER_HOME,
// else ~/.core); an invalid config.yaml is an ErrInvalidInput naming the
// file and line.
func NewDevOps(home string) (*DevOps, error) {
	h := optCString(home)
	defer free(h)
	var ptr *C.vmc_devenv_t
	var e *C.vmc_error_t
	if err := check(C.vmc_devenv_new(h, &ptr, &e), e); err != nil {
		return nil, err
	}
	d := &DevOps{ptr: ptr}
	runtime.SetFinalizer(d, (*DevOps).Close)
	return d, nil
}

// Close releases the handle; the dev VM keeps running.
func (d *DevOps) Close() error {
	if d.ptr != nil {
		C.vmc_devenv_free(d.ptr)
		d.ptr = nil
	}
	runtime.SetFinalizer(d, nil)
	return nil
}

// do runs call with a handle bound to ctx (see Manager.do).
func (d *DevOps) do(ctx context.Context, call func(*C.vmc_devenv_t) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer runtime.KeepAlive(d)
	if ctx.Done() == nil {
		return call(d.ptr)
	}
	t := newToken(ctx)
	defer t.release()
	var view *C.vmc_devenv_t
	var e *C.vmc_error_t
	if err := check(C.vmc_devenv_with_cancel(d.ptr, t.ptr, &view, &e), e); err != nil {
		return err
	}
	defer C.vmc_devenv_free(view)
	return contextError(ctx, call(view))
}

// IsInstalled reports whether the dev image is downloaded.
func (d *DevOps) IsInstalled() bool {
	defer runtime.KeepAlive(d)
	return bool(C.vmc_devenv_is_installed(d.ptr))
}

// InstallReport says what Install or Update did.
type InstallReport struct {
	// Path is the installed image file.
	Path string
	// Version is its version.
	Version string
	// Source is where it came from ("github", "cdn").
	Source string
	// SHA256 is its checksum, lower-case hex.
	SHA256 string
	// Size is its size in bytes.
	Size uint64
	// ResumedFrom is how many bytes an interrupted earlier download gave.
	ResumedFrom uint64
	// AlreadyInstalled is true when that release was there already and
	// nothing was downloaded.
	AlreadyInstalled bool
}

func takeReport(r *C.vmc_devenv_install_report_t) *InstallReport {
	if r == nil {
		return nil
	}
	defer C.vmc_devenv_install_report_free(r)
	return &InstallReport{
		Path:             goStr(C.vmc_devenv_install_report_path(r)),
		Version:          goStr(C.vmc_devenv_install_report_version(r)),
		Source:           goStr(C.vmc_devenv_install_report_source(r)),
		SHA256:           goStr(C.vmc_devenv_install_report_sha256(r)),
		Size:             uint64(C.vmc_devenv_install_report_size(r)),
		ResumedFrom:      uint64(C.vmc_devenv_install_report_resumed_from(r)),
		AlreadyInstalled: bool(C.vmc_devenv_install_report_already_installed(r)),
	}
}

// Progress receives transfer progress: bytes so far, and the total (-1
// when neither the source nor the server says). It is called on the
// goroutine that called Install, Update, Push or Pull.
type Progress func(downloaded, total int64)

func (d *DevOps) download(ctx context.Context, progress Progress, update bool) (*InstallReport, error) {
	var h cgo.Handle
	if progress != nil {
		h = cgo.NewHandle(func(done, total int64) { progress(done, total) })
		defer h.Delete()
	}
	var r *C.vmc_devenv_install_report_t
	err := d.do(ctx, func(dp *C.vmc_devenv_t) error {
		var e *C.vmc_error_t
		if update {
			return check(C.vmc_go_update(dp, C.uintptr_t(h), &r, &e), e)
		}
		return check(C.vmc_go_install(dp, C.uintptr_t(h), &r, &e), e)
	})
	if err != nil {
		return nil, err
	}
	return takeReport(r), nil
}

// Install downloads, verifies (sha256) and installs the latest dev image
// from the configured source, calling progress (may be nil) as it goes.
// Installing the release that is already there downloads nothing. Only a
// complete, verified file is ever installed; an interrupted download
// resumes next time. Failures are ErrDownload or ErrChecksum.
func (d *DevOps) Install(ctx context.Context, progress Progress) (*InstallReport, error) {
	return d.download(ctx, progress, false)
}

// Update installs the latest image if it differs from the installed one,
// and returns nil when there is nothing newer. Refused (ErrRunning) while
// the dev VM runs.
func (d *DevOps) Update(ctx context.Context, progress Progress) (*InstallReport, error) {
	return d.download(ctx, progress, true)
}

// UpdateInfo compares the installed image with the latest release.
type UpdateInfo struct {
	// Current is the installed version.
	Current string
	// Latest is the latest published version.
	Latest string
	// HasUpdate says whether they differ.
	HasUpdate bool
}

// CheckUpdate compares the installed version with the latest published one
// (ErrNotFound when nothing is installed).
func (d *DevOps) CheckUpdate(ctx context.Context) (*UpdateInfo, error) {
	var cur, lat *C.char
	var has C.bool
	err := d.do(ctx, func(dp *C.vmc_devenv_t) error {
		var e *C.vmc_error_t
		return check(C.vmc_devenv_check_update(dp, &cur, &lat, &has, &e), e)
	})
	if err != nil {
		return nil, err
	}
	return &UpdateInfo{Current: takeString(cur), Latest: takeString(lat), HasUpdate: bool(has)}, nil
}

// BootOptions says how to boot the dev VM. Zero values come from
// config.yaml (dev:), then the defaults: 4096 MiB, 2 CPUs, the working
// directory as project, 60 s for SSH.
type BootOptions struct {
	// MemoryMB is the memory in MiB.
	MemoryMB uint32
	// CPUs is the number of virtual CPUs.
	CPUs uint32
	// Fresh replaces an existing dev VM (running or not) with a new one.
	Fresh bool
	// Project is the directory shared at /app.
	Project string
	// SSHKey is the private key for SSH.
	SSHKey string
	// ReadyTimeout is how long to wait for the guest's SSH server.
	ReadyTimeout time.Duration
}

// options builds the C boot options (NULL for nil); release them with
// vmc_devenv_boot_options_free.
func (o *BootOptions) options() (*C.vmc_devenv_boot_options_t, error) {
	if o == nil {
		return nil, nil
	}
	opts := C.vmc_devenv_boot_options_new()
	var e *C.vmc_error_t
	fail := func(code C.vmc_error_code_t) error {
		if err := check(code, e); err != nil {
			C.vmc_devenv_boot_options_free(opts)
			return err
		}
		return nil
	}
	if o.MemoryMB != 0 {
		if err := fail(C.vmc_devenv_boot_options_set_memory_mb(opts, C.uint32_t(o.MemoryMB), &e)); err != nil {
			return nil, err
		}
	}
	if o.CPUs != 0 {
		if err := fail(C.vmc_devenv_boot_options_set_cpus(opts, C.uint32_t(o.CPUs), &e)); err != nil {
			return nil, err
		}
	}
	if err := fail(C.vmc_devenv_boot_options_set_fresh(opts, C.bool(o.Fresh), &e)); err != nil {
		return nil, err
	}
	if o.Project != "" {
		p := cString(o.Project)
		defer free(p)
		if err := fail(C.vmc_devenv_boot_options_set_project(opts, p, &e)); err != nil {
			return nil, err
		}
	}
	if o.SSHKey != "" {
		k := cString(o.SSHKey)
		defer free(k)
		if err := fail(C.vmc_devenv_boot_options_set_ssh_key(opts, k, &e)); err != nil {
			return nil, err
		}
	}
	if o.ReadyTimeout > 0 {
		if err := fail(C.vmc_devenv_boot_options_set_ready_timeout_ms(opts, C.uint64_t(o.ReadyTimeout.Milliseconds()), &e)); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// Boot boots the dev VM (detached, named core-dev) with the project at
// /app, waits for its SSH server and mounts the project. Not installed →
// ErrNotFound; already running without Fresh → ErrRunning. A stopped dev
// VM with the same settings is started again, keeping its disk.
func (d *DevOps) Boot(ctx context.Context, opts *BootOptions) (*Container, error) {
	o, err := opts.options()
	if err != nil {
		return nil, err
	}
	defer C.vmc_devenv_boot_options_free(o)
	var c *C.vmc_container_t
	err = d.do(ctx, func(dp *C.vmc_devenv_t) error {
		var e *C.vmc_error_t
		return check(C.vmc_devenv_boot(dp, o, &c, &e), e)
	})
	if err != nil {
		return nil, err
	}
	return takeContainer(c), nil
}

// Stop stops the dev VM (ACPI power-down first); its container and disk
// are kept for the next Boot. Not running → ErrNotRunning.
func (d *DevOps) Stop(ctx context.Context) (*Container, error) {
	var c *C.vmc_container_t
	err := d.do(ctx, func(dp *C.vmc_devenv_t) error {
		var e *C.vmc_error_t
		return check(C.vmc_devenv_stop(dp, &c, &e), e)
	})
	if err != nil {
		return nil, err
	}
	return takeContainer(c), nil
}

// IsRunning reports whether the dev VM is running.
func (d *DevOps) IsRunning() (bool, error) {
	defer runtime.KeepAlive(d)
	var running C.bool
	var e *C.vmc_error_t
	if err := check(C.vmc_devenv_is_running(d.ptr, &running, &e), e); err != nil {
		return false, err
	}
	return bool(running), nil
}

// DevStatus is what Status reports.
type DevStatus struct {
	// Installed says whether the image is downloaded.
	Installed bool
	// Running says whether the dev VM runs.
	Running bool
	// ImageVersion is the installed image's version ("" when none).
	ImageVersion string
	// ImagePath is the image file (present or not).
	ImagePath string
	// ContainerID is the dev VM's container ("" when there is none).
	ContainerID string
	// MemoryMB is its memory in MiB.
	MemoryMB uint32
	// CPUs is its number of virtual CPUs.
	CPUs uint32
	// SSHPort is the host port of its SSH server (running only).
	SSHPort uint16
	// Uptime is how long it has been running (running only).
	Uptime time.Duration
	// Project is the directory shared at /app.
	Project string
}

// Status reports installed, running, version, container, resources, SSH
// port, uptime and project.
func (d *DevOps) Status() (*DevStatus, error) {
	defer runtime.KeepAlive(d)
	var s *C.vmc_devenv_status_t
	var e *C.vmc_error_t
	if err := check(C.vmc_devenv_status(d.ptr, &s, &e), e); err != nil {
		return nil, err
	}
	defer C.vmc_devenv_status_free(s)
	out := &DevStatus{
		Installed:    bool(C.vmc_devenv_status_installed(s)),
		Running:      bool(C.vmc_devenv_status_running(s)),
		ImageVersion: goStr(C.vmc_devenv_status_image_version(s)),
		ImagePath:    goStr(C.vmc_devenv_status_image_path(s)),
		ContainerID:  goStr(C.vmc_devenv_status_container_id(s)),
		MemoryMB:     uint32(C.vmc_devenv_status_memory_mb(s)),
		CPUs:         uint32(C.vmc_devenv_status_cpus(s)),
		SSHPort:      uint16(C.vmc_devenv_status_ssh_port(s)),
		Project:      goStr(C.vmc_devenv_status_project(s)),
	}
	var secs C.uint64_t
	if C.vmc_devenv_status_uptime_secs(s, &secs) {
		out.Uptime = time.Duration(secs) * time.Second
	}
	return out, nil
}

// DetectServeCommand returns the command Serve runs for the project in dir
// when none is given (artisan → Octane; package.json dev/start;
// composer.json → FrankenPHP; go.mod with main.go → go run .; manage.py →
// Django; else python3 -m http.server 8000).
func DetectServeCommand(dir string) (string, error) {
	c := cString(dir)
	defer free(c)
	var p *C.char
	var e *C.vmc_error_t
	if err := check(C.vmc_detect_serve_command(c, &p, &e), e); err != nil {
		return "", err
	}
	return takeString(p), nil
}

// DetectTestCommand returns the command Test runs for the project in dir
// when none is given, and false when there is none.
func DetectTestCommand(dir string) (string, bool, error) {
	c := cString(dir)
	defer free(c)
	var p *C.char
	var e *C.vmc_error_t
	if err := check(C.vmc_detect_test_command(c, &p, &e), e); err != nil {
		return "", false, err
	}
	return takeString(p), p != nil, nil
}

// TestConfig is a project's .core/test.yaml.
type TestConfig struct {
	// Version is the schema version.
	Version uint32 `json:"version"`
	// Command is the default test command (a shell command line).
	Command string `json:"command"`
	// Commands are the named commands, in file order.
	Commands []TestCommand `json:"commands"`
	// Env is set for every test command.
	Env map[string]string `json:"env"`
}

// TestCommand is a named command of a TestConfig.
type TestCommand struct {
	// Name is its name (TestOptions.Name).
	Name string `json:"name"`
	// Run is the shell command line.
	Run string `json:"run"`
}

// LoadTestConfig reads dir/.core/test.yaml; nil when there is none. An
// invalid file is an ErrInvalidInput naming the file and line.
func LoadTestConfig(dir string) (*TestConfig, error) {
	c := cString(dir)
	defer free(c)
	var p *C.char
	var e *C.vmc_error_t
	if err := check(C.vmc_load_test_config(c, &p, &e), e); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, nil
	}
	var cfg TestConfig
	if err := json.Unmarshal([]byte(takeString(p)), &cfg); err != nil {
		return nil, &Error{Kind: KindInternal, Code: int(C.VMC_ERROR_INTERNAL), Message: "decoding test config: " + err.Error()}
	}
	return &cfg, nil
}

// ImageName is the dev image's file name on this host,
// core-devops-{os}-{arch}.qcow2.
func ImageName() string {
	var p *C.char
	var e *C.vmc_error_t
	if check(C.vmc_devenv_image_name(&p, &e), e) != nil {
		return ""
	}
	return takeString(p)
}
