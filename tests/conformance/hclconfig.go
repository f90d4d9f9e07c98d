package main

import (
	"encoding/json"
	"fmt"

	hcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"

	"dtleconf/proto/hclspec"
)

// toHCLDec turns a plugin's hclspec (ConfigSchema, TaskConfigSchema) into the hcldec.Spec a
// Nomad client decodes configs with, by the client's rules:
//   - an Object's members take their key as name when their own name is empty;
//   - the implied name does not pass through a Default: its primary must name itself;
//   - Attr types are HCL type expressions (string, number, bool, any, list(..), set(..),
//     map(..), tuple([..]), object({..}));
//   - a Literal is HCL expression text, evaluated without variables;
//   - an Attr, BlockAttrs, BlockList, BlockSet or BlockMap without any name is an error, and a
//     BlockMap needs a label.
//
// One error anywhere makes the whole schema unusable, as it does for the client.
func toHCLDec(spec *hclspec.Spec) (hcldec.Spec, error) {
	return convertSpec(spec, "", "root")
}

func convertSpec(spec *hclspec.Spec, implied, path string) (hcldec.Spec, error) {
	if spec == nil {
		return nil, fmt.Errorf("%s: a nil spec", path)
	}
	named := func(own string) string {
		if own != "" {
			return own
		}
		return implied
	}
	switch b := spec.Block.(type) {
	case *hclspec.Spec_Object:
		out := hcldec.ObjectSpec{}
		for key, member := range b.Object.GetAttributes() {
			converted, err := convertSpec(member, key, path+"."+key)
			if err != nil {
				return nil, err
			}
			out[key] = converted
		}
		return out, nil
	case *hclspec.Spec_Array:
		out := hcldec.TupleSpec{}
		for i, element := range b.Array.GetValues() {
			converted, err := convertSpec(element, "", fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, converted)
		}
		return out, nil
	case *hclspec.Spec_Attr:
		name := named(b.Attr.GetName())
		if name == "" {
			return nil, fmt.Errorf("%s: an Attr without a name", path)
		}
		ty, err := typeOf(b.Attr.GetType(), path)
		if err != nil {
			return nil, err
		}
		return &hcldec.AttrSpec{Name: name, Type: ty, Required: b.Attr.GetRequired()}, nil
	case *hclspec.Spec_BlockValue:
		nested, err := nestedSpec(b.BlockValue.GetNested(), path)
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockSpec{
			TypeName: named(b.BlockValue.GetName()),
			Required: b.BlockValue.GetRequired(),
			Nested:   nested,
		}, nil
	case *hclspec.Spec_BlockAttrs:
		name := named(b.BlockAttrs.GetName())
		if name == "" {
			return nil, fmt.Errorf("%s: a BlockAttrs without a name", path)
		}
		ty, err := typeOf(b.BlockAttrs.GetType(), path)
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockAttrsSpec{TypeName: name, ElementType: ty, Required: b.BlockAttrs.GetRequired()}, nil
	case *hclspec.Spec_BlockList:
		name := named(b.BlockList.GetName())
		if name == "" {
			return nil, fmt.Errorf("%s: a BlockList without a name", path)
		}
		nested, err := nestedSpec(b.BlockList.GetNested(), path)
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockListSpec{
			TypeName: name,
			Nested:   nested,
			MinItems: int(b.BlockList.GetMinItems()),
			MaxItems: int(b.BlockList.GetMaxItems()),
		}, nil
	case *hclspec.Spec_BlockSet:
		name := named(b.BlockSet.GetName())
		if name == "" {
			return nil, fmt.Errorf("%s: a BlockSet without a name", path)
		}
		nested, err := nestedSpec(b.BlockSet.GetNested(), path)
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockSetSpec{
			TypeName: name,
			Nested:   nested,
			MinItems: int(b.BlockSet.GetMinItems()),
			MaxItems: int(b.BlockSet.GetMaxItems()),
		}, nil
	case *hclspec.Spec_BlockMap:
		name := named(b.BlockMap.GetName())
		if name == "" || len(b.BlockMap.GetLabels()) == 0 {
			return nil, fmt.Errorf("%s: a BlockMap needs a name and at least one label", path)
		}
		nested, err := nestedSpec(b.BlockMap.GetNested(), path)
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockMapSpec{TypeName: name, LabelNames: b.BlockMap.GetLabels(), Nested: nested}, nil
	case *hclspec.Spec_Default:
		primary, err := convertSpec(b.Default.GetPrimary(), "", path+"(default primary)")
		if err != nil {
			return nil, err
		}
		fallback, err := convertSpec(b.Default.GetDefault(), "", path+"(default value)")
		if err != nil {
			return nil, err
		}
		return &hcldec.DefaultSpec{Primary: primary, Default: fallback}, nil
	case *hclspec.Spec_Literal:
		expr, diags := hclsyntax.ParseExpression([]byte(b.Literal.GetValue()), "literal", hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: literal %q: %s", path, b.Literal.GetValue(), diags.Error())
		}
		value, diags := expr.Value(nil)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: literal %q: %s", path, b.Literal.GetValue(), diags.Error())
		}
		return &hcldec.LiteralSpec{Value: value}, nil
	default:
		return nil, fmt.Errorf("%s: a spec of kind %T", path, spec.Block)
	}
}

func nestedSpec(spec *hclspec.Spec, path string) (hcldec.Spec, error) {
	if spec == nil {
		return nil, fmt.Errorf("%s: a block without a nested spec", path)
	}
	return convertSpec(spec, "", path+"{}")
}

func typeOf(text, path string) (cty.Type, error) {
	expr, diags := hclsyntax.ParseExpression([]byte(text), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("%s: type %q: %s", path, text, diags.Error())
	}
	ty, diags := typeexpr.TypeConstraint(expr)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("%s: type %q: %s", path, text, diags.Error())
	}
	return ty, nil
}

// evalContext is what a Nomad client decodes a task config with: the task's environment as
// variables (so "${NOMAD_META_x}" works), no functions needed here.
func evalContext(env map[string]string) *hcl.EvalContext {
	if env == nil {
		return nil
	}
	vars := map[string]cty.Value{}
	for k, v := range env {
		vars[k] = cty.StringVal(v)
	}
	return &hcl.EvalContext{Variables: vars}
}

// decodeJSON decodes a config the way the Nomad client does with a plugin block of the agent
// config or a job task's `config` map: to JSON, through HCL's JSON parser, then hcldec.
func decodeJSON(config map[string]interface{}, spec hcldec.Spec, env map[string]string) (cty.Value, error) {
	text, err := json.Marshal(config)
	if err != nil {
		return cty.NilVal, err
	}
	file, diags := hcljson.Parse(text, "config.json")
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	value, diags := hcldec.Decode(file.Body, spec, evalContext(env))
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	return value, nil
}

// decodeHCL decodes a config written in HCL's native syntax (as in a job file's `config` block).
func decodeHCL(text string, spec hcldec.Spec, env map[string]string) (cty.Value, error) {
	file, diags := hclsyntax.ParseConfig([]byte(text), "config.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	value, diags := hcldec.Decode(file.Body, spec, evalContext(env))
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	return value, nil
}

// ctyBytes is what the client sends as msgpack_config / msgpack_driver_config: go-cty msgpack of
// the decoded value with its own type.
func ctyBytes(value cty.Value) ([]byte, error) {
	return ctymsgpack.Marshal(value, value.Type())
}

// encodeJSON is decodeJSON then ctyBytes.
func encodeJSON(config map[string]interface{}, spec hcldec.Spec, env map[string]string) ([]byte, error) {
	value, err := decodeJSON(config, spec, env)
	if err != nil {
		return nil, err
	}
	return ctyBytes(value)
}
