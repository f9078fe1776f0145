package vmcontainer

/*
#include <stdlib.h>
#include <vmcontainer.h>
*/
import "C"

import (
	"sort"
)

// Templates are looked up as the CLI does: the built-ins, then
// ./.core/linuxkit/ of the process's working directory, then
// HOME/linuxkit/. Every function that looks templates up takes home: ""
// means $VMCONTAINER_HOME, else ~/.core. (The workspace directory is the
// working directory: the C library reads it, so os.Chdir chooses it.)

// Template is a template as listed.
type Template struct {
	// Name is the lookup name.
	Name string
	// Description is the first non-empty "#" comment line, else
	// "User-defined template".
	Description string
	// Path is the file it was read from ("" for a built-in).
	Path string
	// Builtin says whether it is embedded in the library.
	Builtin bool
}

// ListTemplates lists the built-in templates, then workspace and user
// templates by name.
func ListTemplates(home string) ([]Template, error) {
	h := optCString(home)
	defer free(h)
	var list *C.vmc_template_list_t
	var e *C.vmc_error_t
	if err := check(C.vmc_list_templates(h, &list, &e), e); err != nil {
		return nil, err
	}
	defer C.vmc_template_list_free(list)
	n := int(C.vmc_template_list_len(list))
	out := make([]Template, n)
	for i := range out {
		t := C.vmc_template_list_get(list, C.size_t(i))
		out[i] = Template{
			Name:        goStr(C.vmc_template_name(t)),
			Description: goStr(C.vmc_template_description(t)),
			Path:        goStr(C.vmc_template_path(t)),
			Builtin:     bool(C.vmc_template_is_builtin(t)),
		}
	}
	return out, nil
}

// GetTemplate returns the raw content of template name (ErrTemplate, whose
// message lists the available names, when there is none).
func GetTemplate(home, name string) (string, error) {
	h, n := optCString(home), cString(name)
	defer free(h)
	defer free(n)
	var p *C.char
	var e *C.vmc_error_t
	if err := check(C.vmc_get_template(h, n, &p, &e), e); err != nil {
		return "", err
	}
	return takeString(p), nil
}

// varArrays is vars as two parallel C arrays, sorted by name.
func varArrays(vars map[string]string) (names, values **C.char, n int, release func()) {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = vars[k]
	}
	cn, rn := cStrings(keys)
	cv, rv := cStrings(vals)
	return cn, cv, len(keys), func() { rn(); rv() }
}

// ApplyTemplate returns template name with vars substituted (see
// ApplyVariables).
func ApplyTemplate(home, name string, vars map[string]string) (string, error) {
	h, n := optCString(home), cString(name)
	defer free(h)
	defer free(n)
	names, values, count, release := varArrays(vars)
	defer release()
	var p *C.char
	var e *C.vmc_error_t
	if err := check(C.vmc_apply_template(h, n, names, values, C.size_t(count), &p, &e), e); err != nil {
		return "", err
	}
	return takeString(p), nil
}

// ApplyVariables replaces ${VAR} (required) and ${VAR:-default} (optional)
// in content in one pass: a substituted value is never expanded again.
// Missing required variables give one ErrTemplateVariables naming them all.
func ApplyVariables(content string, vars map[string]string) (string, error) {
	c := cString(content)
	defer free(c)
	names, values, count, release := varArrays(vars)
	defer release()
	var p *C.char
	var e *C.vmc_error_t
	if err := check(C.vmc_apply_variables(c, names, values, C.size_t(count), &p, &e), e); err != nil {
		return "", err
	}
	return takeString(p), nil
}

// ExtractVariables returns the sorted names content requires (${VAR}), and
// each optional name (${VAR:-default}) with its default.
func ExtractVariables(content string) (required []string, optional map[string]string, err error) {
	c := cString(content)
	defer free(c)
	var v *C.vmc_template_variables_t
	var e *C.vmc_error_t
	if err := check(C.vmc_extract_variables(c, &v, &e), e); err != nil {
		return nil, nil, err
	}
	defer C.vmc_template_variables_free(v)
	required = make([]string, int(C.vmc_template_variables_required_len(v)))
	for i := range required {
		required[i] = goStr(C.vmc_template_variables_required_get(v, C.size_t(i)))
	}
	optional = map[string]string{}
	for i := C.size_t(0); i < C.vmc_template_variables_optional_len(v); i++ {
		var name, def *C.char
		if C.vmc_template_variables_optional_get(v, i, &name, &def) {
			optional[goStr(name)] = goStr(def)
		}
	}
	return required, optional, nil
}
