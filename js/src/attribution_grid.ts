// placeholder entry replaced by the AttributionGrid implementation
export default { render() {} };
